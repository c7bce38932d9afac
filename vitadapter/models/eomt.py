"""EoMT: the encoder-only mask transformer (Kerssies et al., "Your ViT is Secretly an Image
Segmentation Model", CVPR 2025; tue-mps/eomt), on any timm ViT the trunk's block API supports.

No adapter, no pixel decoder, no decoder: K learned queries join the tokens before the last N
blocks of the unchanged ViT, and those blocks run over queries + prefix + patch tokens together::

    seq = trunk.embed(image)                              # [prefix, patches]
    seq = trunk.run_blocks(seq, 0, L - N)
    seq = trunk.add_tokens(seq, queries)                  # [queries, prefix, patches]
    for block i in the last N:
        (training, or a mask still annealing) predict from final_norm(seq); mask the next block's
        query -> patch attention outside that prediction's masks
        seq = trunk.run_blocks(seq, i, i + 1, attn_mask)
    predict from final_norm(seq)

A prediction (:class:`~vitadapter.layers.MaskClassificationHead`) is class logits Linear(D, K + 1)
of the queries and mask logits of a 3-layer MLP of the queries against the patch map upscaled to
stride 4. Every prediction is supervised while training (Mask2Former's matching and losses:
:class:`~vitadapter.heads.Mask2FormerLoss`). ``attn_mask_probs`` (a buffer, one per masked block)
is the probability that a query keeps its mask; mask annealing lowers it from 1 to 0
(:class:`~vitadapter.models.MaskAnnealing`). Inference with every probability at 0 runs no mask and
no intermediate prediction: the plain ViT plus one prediction.

For RoPE families (EVA-02, DINOv3) the queries carry no rotation, like the prefix tokens; the
register tokens stay prefix tokens.
"""
from typing import List, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers import MaskClassificationHead, crop_top_left, grid_size, is_traced, query_attention_mask
from ..trunk import TimmViTTrunk, TokenSequence


class MaskPredictions(NamedTuple):
    """mask_logits: [(B, Q, H', W')] and class_logits: [(B, Q, K + 1)], one per prediction, the
    last one final (H', W' = the patch grid times 4 for patch 16)."""
    mask_logits: List[torch.Tensor]
    class_logits: List[torch.Tensor]


def check_query_blocks(num_blocks: int, depth: int, model_name: str) -> None:
    if isinstance(num_blocks, bool) or not isinstance(num_blocks, int) or not 1 <= num_blocks <= depth:
        raise ValueError(f"num_blocks={num_blocks!r}: the queries join the last num_blocks of "
                         f"{model_name!r}'s {depth} blocks; choose 1 to {depth} (EoMT uses 4)")


def semantic_scores(class_logits: torch.Tensor, mask_logits: torch.Tensor,
                    size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
    """class_logits (B, Q, K + 1), mask_logits (B, Q, h, w) -> per-class scores (B, K, h, w): the
    sum over queries of the class probabilities (no-object dropped) times the sigmoid of the
    masks, at the masks' resolution (resized bilinearly to ``size`` if given). Meeting at stride 4
    and resizing the class map costs Q/K of meeting at full resolution (mmseg's convention).

    The scores are laid out channels-last (classes innermost, ``torch.channels_last``): the bilinear
    resize of K maps runs about 3x faster that way on a CPU; index and reduce them as any tensor."""
    probs = class_logits.softmax(-1)[..., :-1]
    b, q, h, w = mask_logits.shape
    # (B, h*w, Q) @ (B, Q, K): the scores pixel by pixel, classes innermost
    scores = torch.bmm(mask_logits.sigmoid().reshape(b, q, h * w).transpose(1, 2), probs)
    scores = scores.reshape(b, h, w, -1).permute(0, 3, 1, 2)
    if size is not None and tuple(scores.shape[-2:]) != tuple(size):
        scores = F.interpolate(scores, size=tuple(size), mode='bilinear', align_corners=False)
    return scores


class MaskTransformer(nn.Module):
    """What EoMT and PMT share: ``trunk``, ``num_classes``, ``num_queries``, ``num_blocks`` (the
    masked blocks), the ``attn_mask_probs`` buffer and the semantic inference. Subclasses define
    ``forward(images, generator=None) -> MaskPredictions``."""

    num_classes: int
    num_queries: int
    num_blocks: int
    attn_mask_probs: torch.Tensor

    def set_mask_probabilities(self, probabilities) -> None:
        """The probability that each masked block keeps its query masks (mask annealing)."""
        probabilities = torch.as_tensor(probabilities, dtype=self.attn_mask_probs.dtype)
        if probabilities.shape != self.attn_mask_probs.shape:
            raise ValueError(f"{type(self).__name__} has {self.num_blocks} masked blocks; got "
                             f"{probabilities.numel()} mask probabilities (one per block)")
        self.attn_mask_probs.copy_(probabilities)

    def semantic_segmentation(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Images (B, 3, H, W) -> per-class scores (B, K, H, W), from the final prediction
        (:func:`semantic_scores`; the input is padded to whole patches, the scores cropped back)."""
        out = self(x, generator=generator)
        scores = semantic_scores(out.class_logits[-1], out.mask_logits[-1], self.padded_size(x.shape[-2:]))
        return crop_top_left(scores, tuple(x.shape[-2:]))

    def padded_size(self, size) -> Tuple[int, int]:
        """The (H, W) an image of ``size`` is padded to (whole patches): what the masks cover."""
        grid = grid_size(size, self.trunk.patch_size)
        return grid[0] * self.trunk.patch_size[0], grid[1] * self.trunk.patch_size[1]


class EoMT(MaskTransformer):
    """EoMT on a timm ViT.

    Args:
        model_name: any timm ViT the block API supports (plain ViT, DeiT, AugReg, DINOv2 with
            registers, EVA-02, DINOv3, CLIP/SigLIP ...), any patch size.
        num_classes: K (class logits have K + 1 entries, the last "no object").
        num_queries: Q (100 for ADE20K, 200 for COCO panoptic).
        num_blocks: N, the last blocks the queries join (4).
        masked_attention: mask the query -> patch attention while the probabilities are above 0
            (EoMT's ``masked_attn_enabled``); False: never, and only the final prediction.
        pretrained / checkpoint / img_size / strict_load / pos_embed_interp / frozen_stages /
            grad_checkpointing / drop_path_rate: the trunk's (:class:`~vitadapter.TimmViTTrunk`).
        **model_kwargs: passed on to ``timm.create_model``.

    Parameters: ``trunk.model.*`` (timm's names), ``queries.weight`` (Q, D), ``head.*``; buffer
    ``attn_mask_probs`` (N,), 1 at construction.

    forward: images (B, 3, H, W), any size -> :class:`MaskPredictions` (N + 1 predictions while
    training or while a mask is active, else 1). ``generator`` draws which queries drop their
    masks (mask annealing).
    """

    def __init__(self, model_name: str, num_classes: int, num_queries: int = 100, num_blocks: int = 4,
                 masked_attention: bool = True, pretrained: bool = False, checkpoint: Optional[str] = None,
                 img_size: Optional[Union[int, Tuple[int, int]]] = None, drop_path_rate: float = 0.0,
                 frozen_stages: int = -1, grad_checkpointing: bool = False, strict_load: bool = True,
                 pos_embed_interp: Optional[str] = None, **model_kwargs):
        super().__init__()
        if isinstance(num_queries, bool) or not isinstance(num_queries, int) or num_queries < 1:
            raise ValueError(f"num_queries={num_queries!r}: give a positive number of queries (EoMT: 100)")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes={num_classes!r}: give the number of classes (ADE20K: 150)")
        self.trunk = TimmViTTrunk(
            model_name, out_indices=None, default_num_outputs=1, pretrained=pretrained,
            checkpoint=checkpoint, img_size=img_size, norm=True, frozen_stages=frozen_stages,
            grad_checkpointing=grad_checkpointing, strict_load=strict_load,
            pos_embed_interp=pos_embed_interp, drop_path_rate=drop_path_rate, **model_kwargs)
        self.trunk.check_token_hooks(extra_tokens=True)
        check_query_blocks(num_blocks, self.trunk.num_blocks, model_name)
        self.num_classes, self.num_queries, self.num_blocks = num_classes, num_queries, num_blocks
        self.masked_attention = masked_attention
        dim = self.trunk.embed_dim
        self.queries = nn.Embedding(num_queries, dim)
        self.head = MaskClassificationHead(dim, num_classes, self.trunk.patch_size)
        self.register_buffer('attn_mask_probs', torch.ones(num_blocks))

    @property
    def first_query_block(self) -> int:
        """The block before which the queries join (L - N)."""
        return len(self.trunk.blocks) - self.num_blocks

    def predict(self, seq: TokenSequence) -> Tuple[torch.Tensor, torch.Tensor]:
        """(mask logits (B, Q, H', W'), class logits (B, Q, K + 1)) from the sequence's normed tokens."""
        normed = self.trunk.final_norm(seq.tokens)
        return self.head(normed[:, :seq.num_extra_tokens], seq.patch_map(normed))

    def forward(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> MaskPredictions:
        trunk = self.trunk
        seq = trunk.run_blocks(trunk.embed(x), 0, self.first_query_block)
        seq = trunk.add_tokens(seq, self.queries.weight)
        masks, classes = [], []
        # a traced or exported graph is the inference graph: annealing done, no mask (the export
        # checks the probabilities before tracing: vitadapter.export)
        probs = [0.0] * self.num_blocks if is_traced() else self.attn_mask_probs.tolist()
        for j, block in enumerate(range(self.first_query_block, len(trunk.blocks))):
            attn_mask = None
            if self.masked_attention and (self.training or probs[j] > 0):
                mask_logits, class_logits = self.predict(seq)
                masks.append(mask_logits)
                classes.append(class_logits)
                if probs[j] > 0:
                    attn_mask = query_attention_mask(mask_logits, seq.grid, seq.num_prefix_tokens,
                                                     probs[j], generator)
            seq = trunk.run_blocks(seq, block, block + 1, attn_mask=attn_mask)
        mask_logits, class_logits = self.predict(seq)
        return MaskPredictions(masks + [mask_logits], classes + [class_logits])
