"""The extractor: ViT -> spatial prior. The prior tokens attend to the patch tokens (deformable
cross-attention, one level), then go through the ConvFFN."""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from timm.layers import DropPath

from ...layers import DeformableAttention, ValueLevels, checkpoint_if
from .conv_ffn import ConvFFN

GridT = Tuple[int, int]


class Extractor(nn.Module):
    """c + DeformAttn(query_norm(c) -> feat_norm(x)); then c + DropPath(ConvFFN(ffn_norm(c))).

    Args:
        dim: width C. num_heads / num_points / ratio: of the deformable attention (1 level).
        with_cffn: use the ConvFFN (official default True). cffn_ratio: its hidden width / C.
        drop: dropout in the ConvFFN. drop_path: stochastic depth on the ConvFFN branch.
        grad_checkpointing: recompute in the backward pass.

    forward: c (B, Nc, C) prior tokens, x (B, N, C) patch tokens, levels: the patch grid seen from
    the prior tokens, prior_grids: [(h, w)] of c2, c3, c4 -> (B, Nc, C).
    """

    def __init__(self, dim: int, num_heads: int = 6, num_points: int = 4, ratio: float = 1.0,
                 with_cffn: bool = True, cffn_ratio: float = 0.25, drop: float = 0.0,
                 drop_path: float = 0.0, grad_checkpointing: bool = False, implementation: str = 'auto'):
        super().__init__()
        self.query_norm = nn.LayerNorm(dim, eps=1e-6)
        self.feat_norm = nn.LayerNorm(dim, eps=1e-6)
        self.attn = DeformableAttention(dim, num_heads, 1, num_points, ratio, implementation)
        self.with_cffn = with_cffn
        if with_cffn:
            self.ffn = ConvFFN(dim, int(dim * cffn_ratio), drop)
            self.ffn_norm = nn.LayerNorm(dim, eps=1e-6)
            self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.grad_checkpointing = grad_checkpointing

    def _forward(self, c: torch.Tensor, x: torch.Tensor, levels: ValueLevels,
                 prior_grids: Sequence[GridT]) -> torch.Tensor:
        c = self.attn(self.query_norm(c), self.feat_norm(x), levels, residual=c)
        if self.with_cffn:
            if isinstance(self.drop_path, nn.Identity) or not self.training:  # the branch as it is
                return self.ffn(self.ffn_norm(c), prior_grids, residual=c)
            c = c + self.drop_path(self.ffn(self.ffn_norm(c), prior_grids))
        return c

    def forward(self, c: torch.Tensor, x: torch.Tensor, levels: ValueLevels,
                prior_grids: Sequence[GridT]) -> torch.Tensor:
        return checkpoint_if(self.grad_checkpointing, self._forward, c, x, levels, prior_grids)
