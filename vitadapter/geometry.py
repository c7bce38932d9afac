"""Geometry shared by the trunk and the adapter: grids of cells of a stride, and resampling a map
from one stride's grid onto another's.

Conventions (the same as mmsegmentation's ``PatchEmbed`` "corner" padding): grids are top-left
aligned; an image of H x W is covered by ``ceil(H / s)`` x ``ceil(W / s)`` cells of stride ``s``
(the last cell may overhang the image); cell ``j`` of stride ``s`` is centred on pixel
``s * (j + 0.5)``. Resampling aligns these pixel centres: output cell ``j`` of stride ``s_out``
reads the input map at ``s_out * (j + 0.5) / s_in - 0.5`` (bilinear, clamped to the border).
This module depends on torch only.
"""
import math
from functools import lru_cache
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F


def grid_size(size: Sequence[int], stride: Sequence[int]) -> Tuple[int, int]:
    """Number of cells of ``stride`` covering an image of ``size`` (ceil division)."""
    return math.ceil(size[0] / stride[0]), math.ceil(size[1] / stride[1])


def pad_to_multiple(x: torch.Tensor, multiple: Sequence[int]) -> torch.Tensor:
    """Zero-pad (B, C, H, W) at the bottom/right so H and W are multiples of ``multiple``."""
    h, w = x.shape[-2:]
    pad_h = -h % multiple[0]
    pad_w = -w % multiple[1]
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return x


@lru_cache(maxsize=64)
def _interp_matrix(n_out: int, n_in: int, ratio: float) -> torch.Tensor:
    """(n_out, n_in) bilinear weights: output i reads input position (i + 0.5) * ratio - 0.5,
    clamped to the border."""
    pos = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * ratio - 0.5).clamp(0, n_in - 1)
    lo = pos.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = pos - lo
    weights = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    weights.index_put_((rows, lo), 1 - frac, accumulate=True)
    weights.index_put_((rows, hi), frac, accumulate=True)
    return weights.float()


def resample_to_grid(x: torch.Tensor, src_stride: Sequence[int], dst_stride: Sequence[int],
                     out_size: Sequence[int]) -> torch.Tensor:
    """Bilinearly resample a (B, C, h, w) map of stride ``src_stride`` onto the grid of stride
    ``dst_stride`` with ``out_size`` = (o, p) cells, pixel centres aligned (see the module
    docstring). Returns (B, C, o, p); ``x`` itself when the grids are the same."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(out_size) and tuple(src_stride) == tuple(dst_stride):
        return x
    rows = _interp_matrix(out_size[0], h, dst_stride[0] / src_stride[0]).to(x.device, x.dtype)
    cols = _interp_matrix(out_size[1], w, dst_stride[1] / src_stride[1]).to(x.device, x.dtype)
    return rows @ x @ cols.t()  # (o, h) @ (B, C, h, w) @ (w, p) -> (B, C, o, p)
