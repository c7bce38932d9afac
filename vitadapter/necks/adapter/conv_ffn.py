"""The extractor's feed-forward network: an MLP with a 3x3 depthwise convolution inside.

The prior tokens are three maps (strides 8, 16, 32) flattened together; the depthwise convolution
(shared by the levels, zero padding at each level's border) runs on each map separately, which
gives the MLP the local context of a convolution. Official names: ``fc1``, ``dwconv.dwconv``,
``fc2``; here ``dwconv.conv``.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ...layers import linear_residual, maps_to_tokens, tokens_to_maps

GridT = Tuple[int, int]


class MultiLevelDWConv(nn.Module):
    """A 3x3 depthwise convolution applied to each level of a flattened multi-level sequence.

    forward: tokens (B, sum h_i*w_i, C), grids [(h_i, w_i)] -> tokens of the same shape.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, groups=channels)

    def forward(self, tokens: torch.Tensor, grids: Sequence[GridT]) -> torch.Tensor:
        return maps_to_tokens([self.conv(m) for m in tokens_to_maps(tokens, grids)])


class ConvFFN(nn.Module):
    """fc1 -> depthwise 3x3 per level -> GELU -> dropout -> fc2 -> dropout.

    Args:
        dim: token width C. hidden_dim: width of the hidden layer (official: C * cffn_ratio).
        drop: dropout rate.

    forward: tokens (B, N, C), grids of the levels the N tokens fill -> (B, N, C).
    """

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = MultiLevelDWConv(hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, tokens: torch.Tensor, grids: Sequence[GridT],
                residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """tokens (B, N, C) -> (B, N, C); with ``residual`` (B, N, C): ``residual + output``, the
        residual accumulated by ``fc2``'s GEMM where the output dropout is inactive."""
        x = self.drop(self.act(self.dwconv(self.fc1(tokens), grids)))
        if residual is None:
            return self.drop(self.fc2(x))
        if self.drop.p == 0 or not self.training:
            return linear_residual(residual, x, self.fc2)
        return residual + self.drop(self.fc2(x))
