"""Building blocks with mmcv's parameter names (so mmdet checkpoints load as they are).

* :class:`ConvGN`: convolution, optional GroupNorm, optional ReLU (mmcv ``ConvModule``: ``conv.*``,
  ``gn.*``);
* :class:`AttentionBlock`: residual multi-head attention with positional encodings added to query
  and key (mmcv ``MultiheadAttention``: ``attn.in_proj_weight`` ...);
* :class:`FeedForward`: residual two-layer MLP (mmcv ``FFN``: ``layers.0.0.*``, ``layers.1.*``).
"""
from typing import Optional

import torch
import torch.nn as nn


class ConvGN(nn.Module):
    """conv (k x k, 'same' padding) -> GroupNorm (``num_groups``; None: no norm, conv bias) -> ReLU
    (``relu=True``). ``bias`` defaults to "no norm". forward: (B, C_in, H, W) -> (B, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 num_groups: Optional[int] = 32, relu: bool = False, bias: Optional[bool] = None):
        super().__init__()
        if num_groups is not None and out_channels % num_groups:
            raise ValueError(f"GroupNorm: {out_channels} channels are not divisible by "
                             f"num_groups={num_groups}; use a multiple of {num_groups} for feat_channels")
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                              bias=num_groups is None if bias is None else bias)
        self.gn = nn.GroupNorm(num_groups, out_channels) if num_groups is not None else None
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.gn is not None:
            x = self.gn(x)
        return torch.relu(x) if self.relu else x


class AttentionBlock(nn.Module):
    """query + MHA(query + query_pos, key + key_pos, value) (mmcv's ``MultiheadAttention``).

    forward: query (B, Lq, C), key / value (B, Lk, C), query_pos (B or 1, Lq, C), key_pos
    (B or 1, Lk, C), attn_mask (B * heads, Lq, Lk) bool, True = not attended -> (B, Lq, C).
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)

    def forward(self, query, key, value, query_pos=None, key_pos=None, attn_mask=None):
        q = query if query_pos is None else query + query_pos
        k = key if key_pos is None else key + key_pos
        out = self.attn(q, k, value, attn_mask=attn_mask, need_weights=False)[0]
        return query + out


class FeedForward(nn.Module):
    """x + Linear(ReLU(Linear(x))) (mmcv's ``FFN`` with two layers). forward: (..., C) -> (..., C)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.layers = nn.Sequential(nn.Sequential(nn.Linear(dim, hidden), nn.ReLU()),
                                    nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)
