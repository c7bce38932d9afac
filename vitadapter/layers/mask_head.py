"""The mask-classification prediction of EoMT and PMT, and their masked attention.

From one token sequence ``[queries (Q), prefix tokens (P), patch tokens (h * w)]`` (normed):

* class logits: ``Linear(D, K + 1)`` of each query (the last class is "no object");
* mask logits: ``einsum('bqc,bchw->bqhw', MLP(queries), upscale(patch map))``: a 3-layer MLP of
  the queries against the patch map brought to stride 4 by the scale blocks (:mod:`.scale_block`).

While training, the next blocks' queries attend to the patches only inside their current mask
(downsampled to the patch grid, logit > 0): :func:`query_attention_mask`. Mask annealing turns that
off per query with a probability that falls from 1 to 0 over training.

Without gradients on a CPU, the last scale block and the mask product run a band of rows of one
image at a time (:func:`banded_mask_logits`): the full-size maps of that block (C x H' x W' per
image, 100 MB for ViT-B at 512x512 and batch 2) never exist at once. glibc maps every allocation
above 32 MiB afresh on each call, page fault by page fault; bands stay below that and reuse freed
memory. The values are the whole map's, up to rounding: each band carries one input row of its
neighbours for the depth-wise 3x3, and the 2x2 transposed convolution never mixes rows.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .measured_choice import is_traced
from .scale_block import ScaleBlock, scale_blocks

# the bytes of one band's upsampled map (C x 2 output rows x W' per input row): 16 MiB is 42 input
# rows of ViT-S's 64-wide map at 512x512 and 21 of ViT-B's, each intermediate below glibc's 32 MiB
# (8 MiB bands ran slower on a 2-core EPYC); at least 8 rows, so that few rows are recomputed
BAND_BYTES = 16 << 20
MIN_BAND_ROWS = 8


class MaskClassificationHead(nn.Module):
    """Args:
        dim: the token width D. num_classes: K. patch_size: the patch map's stride, which sets
        the number of scale blocks (2 for patch 16: stride 4).

    Parameter names: ``class_head``, ``mask_head.{0,2,4}`` (Linear, GELU, Linear, GELU, Linear),
    ``upscale.i.{conv1,conv2,norm}``: tue-mps/eomt's, so its checkpoints map one to one.

    forward: queries (B, Q, D), patch map (B, D, h, w) -> (mask logits (B, Q, s*h, s*w), class
    logits (B, Q, K + 1)), s = 2 ** number of scale blocks.
    """

    def __init__(self, dim: int, num_classes: int, patch_size: Sequence[int]):
        super().__init__()
        self.num_classes = num_classes
        self.class_head = nn.Linear(dim, num_classes + 1)
        self.mask_head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim), nn.GELU(),
                                       nn.Linear(dim, dim))
        self.upscale = scale_blocks(dim, patch_size)

    def forward(self, queries: torch.Tensor, patch_map: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        embeddings = self.mask_head(queries)  # (B, Q, D)
        if runs_banded(self, queries, patch_map):
            pixels = patch_map
            for block in self.upscale[:-1]:
                pixels = block(pixels)
            return banded_mask_logits(self.upscale[-1], pixels, embeddings), self.class_head(queries)
        pixels, weight, bias = patch_map, None, None
        for block in self.upscale:  # each norm's affine folds into what follows (ScaleBlock.normalized)
            pixels, weight, bias = block.normalized(pixels, weight, bias)
        # the last one into the product: (x_hat * g + b) . e = x_hat . (g * e) + b . e
        b, d, h, w = pixels.shape
        # einsum('bqc,bchw->bqhw') as (B, H'W', D) @ (B, D, Q): pixels channels innermost, so
        # that their gradient comes back channels-last too (no layout copies in the backward)
        pixels = pixels.permute(0, 2, 3, 1).reshape(b, h * w, d)
        if weight is None:
            mask_logits = torch.bmm(pixels, embeddings.transpose(1, 2))
        else:
            mask_logits = torch.baddbmm((embeddings @ bias)[:, None, :], pixels, (embeddings * weight).transpose(1, 2))
        return mask_logits.transpose(1, 2).reshape(b, -1, h, w), self.class_head(queries)


def runs_banded(head: nn.Module, queries: torch.Tensor, patch_map: torch.Tensor) -> bool:
    """Whether ``head`` computes the mask logits band by band: eagerly on a CPU, with nothing to
    differentiate (compiled, traced or exported graphs, GPUs and training run whole maps)."""
    needs_grad = torch.is_grad_enabled() and (
        queries.requires_grad or patch_map.requires_grad or any(p.requires_grad for p in head.parameters()))
    return (patch_map.device.type == 'cpu' and patch_map.numel() > 0 and not needs_grad
            and not is_traced())


def banded_mask_logits(block: ScaleBlock, pixels: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """``einsum('bqc,bchw->bqhw', embeddings, block(pixels))`` a band of rows of one image at a
    time (the module's own layers per band; each band recomputes one input row either side for
    the depth-wise 3x3 and drops it after).

    pixels: (B, C, h, w); embeddings: (B, Q, C) -> mask logits (B, Q, 2h, 2w), queries innermost
    in memory (as the whole-map product lays them out)."""
    b, c, h, w = pixels.shape
    row_bytes = c * 2 * (2 * w) * pixels.element_size()
    rows = max(MIN_BAND_ROWS, BAND_BYTES // row_bytes)
    out = None  # (B, H', W', Q), in the product's dtype (autocast may lower it)
    for i in range(b):
        for top in range(0, h, rows):
            bottom = min(h, top + rows)
            first, last = max(0, top - 1), min(h, bottom + 1)
            band = block(pixels[i:i + 1, :, first:last])  # (1, C, 2 * (last - first), 2w)
            start = 2 * (top - first)
            band = band[0, :, start:start + 2 * (bottom - top)].permute(1, 2, 0)  # (n, 2w, C)
            logits = band @ embeddings[i].transpose(0, 1)  # (n, 2w, Q)
            if out is None:
                out = logits.new_empty(b, 2 * h, 2 * w, logits.shape[-1])
            out[i, 2 * top:2 * bottom] = logits
    return out.permute(0, 3, 1, 2)


def query_attention_mask(mask_logits: torch.Tensor, grid: Tuple[int, int], num_prefix_tokens: int,
                         keep_probability: float = 1.0,
                         generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """The attention mask (B, 1, T, T), bool, True = may attend, over ``[queries (Q), prefix (P),
    patches (h * w)]``: query q attends to patch p only where its mask logits, bilinearly resized
    to the patch ``grid``, are > 0; everything else attends freely. With ``keep_probability`` < 1
    each query keeps its mask with that probability (mask annealing), independently per image.

    mask_logits: (B, Q, H', W'), the previous prediction's.
    """
    b, q = mask_logits.shape[:2]
    n = grid[0] * grid[1]
    total = q + num_prefix_tokens + n
    resized = F.interpolate(mask_logits.detach(), size=tuple(grid), mode='bilinear', align_corners=False)
    inside = resized.reshape(b, q, n) > 0
    if keep_probability < 1:
        released = torch.rand(b, q, device=mask_logits.device, generator=generator) > keep_probability
        inside = inside | released[..., None]
    mask = torch.ones(b, 1, total, total, dtype=torch.bool, device=mask_logits.device)
    mask[:, 0, :q, q + num_prefix_tokens:] = inside
    return mask
