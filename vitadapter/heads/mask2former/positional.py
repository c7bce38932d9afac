"""Sine positional encoding of a (h, w) grid (DETR's, normalised), as mmdet's
``SinePositionalEncoding(num_feats, normalize=True)`` computes it for an unpadded map.

Computed in float32 whatever the features' dtype, with the same operations as mmdet (the position
``i`` in 1..n divided by ``n + 1e-6``, times 2 pi, divided by ``temperature ** (2 * (k // 2) / F)``),
so the values are those of mmdet's module bit for bit; callers cast the result to their dtype.
"""
import math

import torch


def sine_positional_encoding(height: int, width: int, num_feats: int = 128, temperature: int = 10000,
                             device=None) -> torch.Tensor:
    """-> (1, 2 * num_feats, height, width) float32: the y encoding's channels, then the x encoding's,
    each alternating sin (even k) and cos (odd k) of ``2 pi * pos / (n + 1e-6) / temperature^(2 (k // 2) / F)``."""
    if num_feats % 2:
        raise ValueError(f"sine positional encoding: num_feats={num_feats} must be even")
    eps, scale = 1e-6, 2 * math.pi
    y = torch.arange(1, height + 1, dtype=torch.float32, device=device)
    x = torch.arange(1, width + 1, dtype=torch.float32, device=device)
    y = y / (y[-1:] + eps) * scale
    x = x / (x[-1:] + eps) * scale
    k = torch.arange(num_feats, dtype=torch.float32, device=device)
    dim_t = temperature ** (2 * (k // 2) / num_feats)

    def encode(pos):  # (n,) -> (n, num_feats): sin, cos interleaved
        angles = pos[:, None] / dim_t
        return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=2).view(len(pos), -1)

    pos_y = encode(y)[:, None, :].expand(height, width, num_feats)
    pos_x = encode(x)[None, :, :].expand(height, width, num_feats)
    return torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1).unsqueeze(0)
