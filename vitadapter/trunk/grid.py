"""Mapping the trunk's patch grid onto the pyramid's stride grid (the grid conventions and the
resampling functions are in :mod:`vitadapter.layers.geometry`).

An input of H x W is zero-padded at the bottom and right to the next multiple of the patch size,
so the top-left pixel of every token is ``(i * patch, j * patch)`` in the original image and a map
of stride ``s`` keeps its first ``ceil(H / s)`` rows and ``ceil(W / s)`` columns.

Patch sizes other than the pyramid's reference stride (patch 14 for DINOv2, stride 16 for
UperNet/FPN pyramids) are mapped onto the stride grid in one of two ways:

* ``'maps'`` (default): the trunk runs at its native patch size (exactly the features it was
  trained to give) and each token map is resampled bilinearly onto the stride grid, with pixel
  centres aligned (:func:`vitadapter.layers.resample_to_grid`): output cell ``j`` (centre
  ``stride * (j + 0.5)``) reads the token map at ``stride * (j + 0.5) / patch - 0.5``. Costs more tokens (512x512 at patch 14: 37x37 = 1369
  tokens instead of 32x32 = 1024).
* ``'input'``: the input is padded to a multiple of the stride and resized by ``patch / stride``
  (bilinear, antialiased), so the trunk's grid *is* the stride grid: each token covers a
  ``stride x stride`` cell of the original image. Cheaper; the trunk sees a slightly smaller image.
"""
from typing import Sequence

import torch
import torch.nn.functional as F

from ..layers import grid_size, pad_to_multiple

GRID_MAPPINGS = ('maps', 'input')


def resize_input_to_grid(x: torch.Tensor, patch: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """'input' grid mapping: pad (B, C, H, W) to a multiple of ``stride`` and resize it by
    ``patch / stride`` so that a trunk with ``patch`` has one token per ``stride`` cell."""
    x = pad_to_multiple(x, stride)
    cells = grid_size(x.shape[-2:], stride)
    size = (cells[0] * patch[0], cells[1] * patch[1])
    if size == tuple(x.shape[-2:]):
        return x
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False, antialias=True)
