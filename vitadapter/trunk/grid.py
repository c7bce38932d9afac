"""Geometry of the patch grid: padding inputs, and mapping a patch grid onto a stride grid.

Padding convention (the same as mmsegmentation's ``PatchEmbed`` "corner" padding): an input of
H x W is zero-padded at the bottom and right to the next multiple of the patch size, so the top-left
pixel of every token is ``(i * patch, j * patch)`` in the original image and a map of stride ``s``
keeps its first ``ceil(H / s)`` rows and ``ceil(W / s)`` columns.

Patch sizes other than the pyramid's reference stride (patch 14 for DINOv2, stride 16 for
UperNet/FPN pyramids) are mapped onto the stride grid in one of two ways:

* ``'maps'`` (default): the trunk runs at its native patch size (exactly the features it was
  trained to give) and each token map is resampled bilinearly onto the stride grid, with pixel
  centres aligned: output cell ``j`` (centre ``stride * (j + 0.5)``) reads the token map at
  ``stride * (j + 0.5) / patch - 0.5``. Costs more tokens (512x512 at patch 14: 37x37 = 1369
  tokens instead of 32x32 = 1024).
* ``'input'``: the input is padded to a multiple of the stride and resized by ``patch / stride``
  (bilinear, antialiased), so the trunk's grid *is* the stride grid: each token covers a
  ``stride x stride`` cell of the original image. Cheaper; the trunk sees a slightly smaller image.
"""
import math
from functools import lru_cache
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F

GRID_MAPPINGS = ('maps', 'input')


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
    ``dst_stride`` with ``out_size`` cells, pixel centres aligned (see module docstring)."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(out_size) and tuple(src_stride) == tuple(dst_stride):
        return x
    rows = _interp_matrix(out_size[0], h, dst_stride[0] / src_stride[0]).to(x.device, x.dtype)
    cols = _interp_matrix(out_size[1], w, dst_stride[1] / src_stride[1]).to(x.device, x.dtype)
    return rows @ x @ cols.t()  # (o, h) @ (B, C, h, w) @ (w, p) -> (B, C, o, p)


def resize_input_to_grid(x: torch.Tensor, patch: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """'input' grid mapping: pad (B, C, H, W) to a multiple of ``stride`` and resize it by
    ``patch / stride`` so that a trunk with ``patch`` has one token per ``stride`` cell."""
    x = pad_to_multiple(x, stride)
    cells = grid_size(x.shape[-2:], stride)
    size = (cells[0] * patch[0], cells[1] * patch[1])
    if size == tuple(x.shape[-2:]):
        return x
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False, antialias=True)
