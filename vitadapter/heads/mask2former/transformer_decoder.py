"""Mask2Former's transformer decoder: queries attend, layer by layer, to one level of the pixel
decoder's maps at a time (coarse to fine, round robin), only inside the mask the previous layer
predicted (masked attention), then to each other, then an FFN; post-norm (mmdet's
``Mask2FormerTransformerDecoder``, same parameter names).

:func:`predict_masks` turns decoder outputs into class logits, mask logits and the next layer's
attention mask (mmdet's ``Mask2FormerHead._forward_head``).
"""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import AttentionBlock, FeedForward


class MaskedDecoderLayer(nn.Module):
    """q = LN(q + CrossAttn(q + q_pos, memory + memory_pos, memory, mask));
    q = LN(q + SelfAttn(q + q_pos, q + q_pos, q)); q = LN(q + FFN(q)).

    forward: query (B, Q, C), query_pos (B, Q, C), memory (B, N, C), memory_pos (B or 1, N, C),
    attn_mask (B * heads, Q, N) bool (True: not attended) -> (B, Q, C).
    """

    def __init__(self, dim: int, num_heads: int, hidden: int):
        super().__init__()
        self.self_attn = AttentionBlock(dim, num_heads)
        self.cross_attn = AttentionBlock(dim, num_heads)
        self.ffn = FeedForward(dim, hidden)
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(3)])

    def forward(self, query, query_pos, memory, memory_pos, attn_mask=None):
        query = self.norms[0](self.cross_attn(query, memory, memory, query_pos, memory_pos, attn_mask))
        query = self.norms[1](self.self_attn(query, query, query, query_pos, query_pos))
        return self.norms[2](self.ffn(query))


class MaskedTransformerDecoder(nn.Module):
    """``num_layers`` :class:`MaskedDecoderLayer` (``layers.i``) and the shared output norm
    (``post_norm``) applied before every prediction."""

    def __init__(self, num_layers: int = 9, dim: int = 256, num_heads: int = 8, hidden: int = 2048):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"transformer decoder: width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.layers = nn.ModuleList(MaskedDecoderLayer(dim, num_heads, hidden) for _ in range(num_layers))
        self.post_norm = nn.LayerNorm(dim)


def predict_masks(query: torch.Tensor, mask_features: torch.Tensor, decoder: MaskedTransformerDecoder,
                  cls_embed: nn.Module, mask_embed: nn.Module,
                  attn_size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """query (B, Q, C), mask_features (B, D, H, W) -> class logits (B, Q, K + 1), mask logits
    (B, Q, H, W) = mask_embed(q) . mask_features, and the attention mask for a level of ``attn_size``
    (h, w): (B * heads, Q, h * w) bool, True where the bilinearly resized mask's sigmoid is < 0.5,
    all False for a query whose mask is empty there (it then attends everywhere)."""
    query = decoder.post_norm(query)
    cls_logits = cls_embed(query)
    mask_logits = torch.einsum('bqc,bchw->bqhw', mask_embed(query), mask_features)
    with torch.no_grad():
        resized = F.interpolate(mask_logits, attn_size, mode='bilinear', align_corners=False)
        blocked = resized.flatten(2).sigmoid() < 0.5  # (B, Q, h * w)
        blocked &= ~blocked.all(-1, keepdim=True)
        blocked = blocked.repeat_interleave(decoder.num_heads, dim=0)  # batch-major, as MHA wants
    return cls_logits, mask_logits, blocked
