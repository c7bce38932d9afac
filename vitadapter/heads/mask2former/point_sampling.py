"""Reading maps at continuous points, and PointRend's uncertainty-based choice of points
(mmcv's ``point_sample``, mmdet's ``get_uncertain_point_coords_with_randomness``).

Mask2Former computes its mask losses and matching costs at a few thousand points per mask
instead of every pixel: random points for the matching, and for the loss mostly the points where
the prediction is least certain (logit nearest 0) among an oversampled random set, plus a few
random ones.
"""
from typing import Optional

import torch
import torch.nn.functional as F


def point_sample(maps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """maps (N, C, H, W), points (N, P, 2) as (x, y) in [0, 1] of the map's extent
    -> (N, C, P), bilinear, ``align_corners=False``, zeros outside. The maps are cast to the points'
    dtype (a 0/1 target mask sampled at float64 points stays float64)."""
    grid = points.unsqueeze(2) * 2 - 1  # (N, P, 1, 2) in grid_sample's [-1, 1]
    return F.grid_sample(maps.to(points.dtype), grid, mode='bilinear', padding_mode='zeros',
                         align_corners=False).squeeze(3)


def uncertain_point_coords(mask_logits: torch.Tensor, num_points: int, oversample_ratio: float = 3.0,
                           importance_sample_ratio: float = 0.75,
                           generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """mask_logits (N, H, W) -> points (N, num_points, 2) in [0, 1]: the
    ``int(importance_sample_ratio * num_points)`` most uncertain (smallest |logit|) of
    ``int(num_points * oversample_ratio)`` uniform random points, then uniform random points for the
    rest. The random draws are made in that order, on the logits' device, in their dtype (at least
    float32): with the same RNG state they are mmdet's draws."""
    if oversample_ratio < 1 or not 0 <= importance_sample_ratio <= 1:
        raise ValueError(f"uncertain points: oversample_ratio={oversample_ratio} must be >= 1 and "
                         f"importance_sample_ratio={importance_sample_ratio} in [0, 1]")
    n = mask_logits.shape[0]
    dtype = torch.promote_types(mask_logits.dtype, torch.float32)
    kw = dict(device=mask_logits.device, dtype=dtype, generator=generator)
    num_sampled = int(num_points * oversample_ratio)
    num_uncertain = int(importance_sample_ratio * num_points)
    candidates = torch.rand(n, num_sampled, 2, **kw)
    uncertainty = -point_sample(mask_logits.unsqueeze(1), candidates)[:, 0].abs()  # (N, num_sampled)
    chosen = uncertainty.topk(num_uncertain, dim=1)[1]
    points = torch.gather(candidates, 1, chosen[..., None].expand(-1, -1, 2))
    if num_points > num_uncertain:
        points = torch.cat((points, torch.rand(n, num_points - num_uncertain, 2, **kw)), dim=1)
    return points
