"""The mask-classification prediction of EoMT and PMT, and their masked attention.

From one token sequence ``[queries (Q), prefix tokens (P), patch tokens (h * w)]`` (normed):

* class logits: ``Linear(D, K + 1)`` of each query (the last class is "no object");
* mask logits: ``einsum('bqc,bchw->bqhw', MLP(queries), upscale(patch map))``: a 3-layer MLP of
  the queries against the patch map brought to stride 4 by the scale blocks (:mod:`.scale_block`).

While training, the next blocks' queries attend to the patches only inside their current mask
(downsampled to the patch grid, logit > 0): :func:`query_attention_mask`. Mask annealing turns that
off per query with a probability that falls from 1 to 0 over training.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .scale_block import scale_blocks


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
