"""The injector: spatial prior -> ViT. The patch tokens attend to the prior levels (deformable
cross-attention), gated by a learnable per-channel ``gamma`` (0 at init: the ViT starts exactly as
pre-trained)."""
import torch
import torch.nn as nn

from ...layers import DeformableAttention, ValueLevels, checkpoint_if


class Injector(nn.Module):
    """x + gamma * DeformAttn(query_norm(x) -> feat_norm(c)).

    Args:
        dim: width C. num_heads / num_points / ratio: of the deformable attention (3 levels).
        init_values: initial gamma (official: 0; BEiT-Adapter: 1e-6).
        grad_checkpointing: recompute in the backward pass.

    forward: x (B, N, C) patch tokens, c (B, Nc, C) prior tokens (c2, c3, c4), levels: the prior
    levels as seen from the patch tokens -> (B, N, C).
    """

    def __init__(self, dim: int, num_heads: int = 6, num_points: int = 4, ratio: float = 1.0,
                 init_values: float = 0.0, num_levels: int = 3, grad_checkpointing: bool = False,
                 implementation: str = 'auto'):
        super().__init__()
        self.query_norm = nn.LayerNorm(dim, eps=1e-6)
        self.feat_norm = nn.LayerNorm(dim, eps=1e-6)
        self.attn = DeformableAttention(dim, num_heads, num_levels, num_points, ratio, implementation)
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))
        self.grad_checkpointing = grad_checkpointing

    def _forward(self, x: torch.Tensor, c: torch.Tensor, levels: ValueLevels) -> torch.Tensor:
        return self.attn(self.query_norm(x), self.feat_norm(c), levels, residual=x, scale=self.gamma)

    def forward(self, x: torch.Tensor, c: torch.Tensor, levels: ValueLevels) -> torch.Tensor:
        return checkpoint_if(self.grad_checkpointing, self._forward, x, c, levels)
