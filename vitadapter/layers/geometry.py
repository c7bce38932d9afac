"""Geometry shared by the trunk and the adapter: grids of cells of a stride, and resampling a map
from one stride's grid onto another's.

Conventions (the same as mmsegmentation's ``PatchEmbed`` "corner" padding): grids are top-left
aligned; an image of H x W is covered by ``ceil(H / s)`` x ``ceil(W / s)`` cells of stride ``s``
(the last cell may overhang the image); cell ``j`` of stride ``s`` is centred on pixel
``s * (j + 0.5)``. Resampling aligns these pixel centres: output cell ``j`` of stride ``s_out``
reads the input map at ``s_out * (j + 0.5) / s_in - 0.5`` (bilinear, clamped to the border).
This module depends on torch only.

Sizes may be plain ints (eager) or symbolic ints (``torch.export`` with dynamic shapes, as the
ONNX export uses): sizes are computed with integer arithmetic (``(n - 1) // s + 1`` for the ceiling),
shortcuts taken only when they are known from plain ints, and the resampling weights of symbolic
sizes are built from tensors, so one traced graph serves every input size.
"""
import math
from functools import lru_cache
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F


def ceil_div(size, stride: int):
    """``ceil(size / stride)`` for sizes >= 1, in integer arithmetic: exact, and traceable for
    symbolic sizes. Written as a convolution's output size, ``(size - 1) // stride + 1``, so that
    a traced graph sees the same expression for a grid computed here and for the output of a
    stride-2 convolution chain (and a non-negative numerator: ONNX's integer division truncates)."""
    return (size - 1) // stride + 1


def is_static(*sizes) -> bool:
    """Whether all ``sizes`` are plain ints (not symbolic sizes of a traced graph)."""
    return not any(isinstance(s, torch.SymInt) for s in sizes)


def grid_size(size: Sequence[int], stride: Sequence[int]) -> Tuple[int, int]:
    """Number of cells of ``stride`` covering an image of ``size`` (ceil division)."""
    return ceil_div(size[0], stride[0]), ceil_div(size[1], stride[1])


def pad_to_multiple(x: torch.Tensor, multiple: Sequence[int]) -> torch.Tensor:
    """Zero-pad (B, C, H, W) at the bottom/right so H and W are multiples of ``multiple``
    (symbolic sizes are always padded, by an amount that may be 0)."""
    h, w = x.shape[-2:]
    pad_h = ceil_div(h, multiple[0]) * multiple[0] - h
    pad_w = ceil_div(w, multiple[1]) * multiple[1] - w
    if not is_static(pad_h, pad_w) or pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return x


def crop_top_left(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The first ``size`` = (h, w) rows and columns of (..., H, W), h <= H and w <= W. A traced
    graph (symbolic sizes) gathers them instead of slicing: slicing would need a guard on the input
    size that the tracer cannot prove for every size."""
    if is_static(*size, *x.shape[-2:]):
        return x[..., :size[0], :size[1]]
    rows = torch.arange(size[0], device=x.device)
    cols = torch.arange(size[1], device=x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def _interp_matrix(n_out: int, n_in: int, ratio: float) -> torch.Tensor:
    """(n_out, n_in) bilinear weights: output i reads input position (i + 0.5) * ratio - 0.5,
    clamped to the border. Sizes may be symbolic (tensor ops only; cached for plain ints)."""
    if is_static(n_out, n_in):
        return _interp_matrix_cached(n_out, n_in, ratio)
    return _interp_weights(n_out, n_in, ratio)


def _interp_weights(n_out, n_in, ratio: float) -> torch.Tensor:
    last = torch.arange(n_in, dtype=torch.float64)[-1:]  # n_in - 1, as a tensor when symbolic
    pos = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * ratio - 0.5).clamp(min=0)
    pos = torch.minimum(pos, last)
    lo = torch.minimum(pos.floor(), last)
    hi = torch.minimum(lo + 1, last)
    frac = pos - lo
    cells = torch.arange(n_in, dtype=torch.float64)
    # both taps of a clamped border cell fall on the same input: their weights add up to 1
    weights = (1 - frac)[:, None] * (cells == lo[:, None]) + frac[:, None] * (cells == hi[:, None])
    return weights.float()


_interp_matrix_cached = lru_cache(maxsize=64)(_interp_weights)


def resample_to_grid(x: torch.Tensor, src_stride: Sequence[int], dst_stride: Sequence[int],
                     out_size: Sequence[int], layout: str = 'NCHW') -> torch.Tensor:
    """Bilinearly resample a map of stride ``src_stride`` onto the grid of stride ``dst_stride``
    with ``out_size`` = (o, p) cells, pixel centres aligned (see the module docstring).

    Args:
        x: (B, C, h, w) for ``layout='NCHW'``; (B, h, w, C) for ``'NHWC'`` (tokens on their grid,
            e.g. a ViT's patch tokens reshaped; plain int sizes only).
    Returns:
        (B, C, o, p), or (B, o, p, C) contiguous for ``'NHWC'``; ``x`` itself when the grids are
        the same.
    """
    if layout not in ('NCHW', 'NHWC'):
        raise ValueError(f"resample_to_grid: layout must be 'NCHW' or 'NHWC', got {layout!r}")
    h, w = x.shape[-2:] if layout == 'NCHW' else x.shape[1:3]
    # (equal strides: a traced graph's sizes are then equal expressions, decided without a guard)
    if tuple(src_stride) == tuple(dst_stride) and (h, w) == tuple(out_size):
        return x
    rows = _interp_matrix(out_size[0], h, dst_stride[0] / src_stride[0]).to(x.device, x.dtype)
    cols = _interp_matrix(out_size[1], w, dst_stride[1] / src_stride[1]).to(x.device, x.dtype)
    static = is_static(h, w, *out_size)
    if layout == 'NHWC':
        if not static:
            raise ValueError("resample_to_grid(layout='NHWC') needs plain int sizes; use 'NCHW' "
                             "in traced or exported code")
        b, channels = x.shape[0], x.shape[-1]
        x = torch.matmul(rows, x.reshape(b, h, w * channels))  # (B, o, w * C)
        x = torch.matmul(cols, x.view(b * out_size[0], w, channels))  # (B * o, p, C)
        return x.view(b, out_size[0], out_size[1], channels)
    if static:
        return rows @ x @ cols.t()  # (o, h) @ (B, C, h, w) @ (w, p) -> (B, C, o, p)
    # traced with symbolic sizes: the same products as linear maps of the last dimension
    # (matmul's broadcasting would need guards on the sizes)
    x = F.linear(x, cols)  # (B, C, h, p)
    return F.linear(x.transpose(-1, -2), rows).transpose(-1, -2)
