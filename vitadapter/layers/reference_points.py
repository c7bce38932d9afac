"""Reference points of deformable attention: where each query sits on each level it reads.

Deformable attention (:mod:`.deform_attn`) takes, for every query, a reference point in [0, 1] of
each value level's extent. Queries are the cells of one or more grids (a ViT's patch tokens, the
spatial prior's levels, a pixel decoder's levels); a cell ``j`` of stride ``s`` is centred on the
pixel ``s * (j + 0.5)`` (grids top-left aligned, as in :mod:`.geometry`).

* :func:`reference_points` places the queries in pixels: a query at pixel ``p`` reads level
  ``(h, w)`` of stride ``s`` at ``p / (s * w)`` (x) and ``p / (s * h)`` (y), so it looks at the same
  image point on every level, for any input size and patch size (ViT-Adapter's interactions).
* :func:`normalized_cell_centres` gives each cell's centre in [0, 1] of its own grid,
  ``((j + 0.5) / w, (i + 0.5) / h)`` (Deformable DETR's and mmdet's encoder, which read the same
  normalised point on every level). Both agree wherever every level spans the same pixels.
"""
from typing import Sequence, Tuple

import torch

from .deform_attn import ValueLevels
from .geometry import is_static

GridT = Tuple[int, int]


def size_tensor(rows: Sequence[Sequence[int]], dtype: torch.dtype = torch.long, device=None) -> torch.Tensor:
    """(len(rows), len(row)) tensor of sizes; symbolic sizes (dynamic-shape tracing, ONNX export)
    become values computed in the graph instead of constants of the example input."""
    if is_static(*(v for row in rows for v in row)):
        return torch.tensor([list(row) for row in rows], dtype=dtype, device=device)
    return torch.stack([torch.stack([torch.full((), v, dtype=dtype, device=device) for v in row])
                        for row in rows])


def cell_centres(grid: GridT, stride: Sequence[float] = (1, 1), dtype: torch.dtype = torch.float64,
                 device=None) -> torch.Tensor:
    """(h*w, 2): the (x, y) pixel of the centre of every cell of a ``grid`` = (h, w) of
    ``stride``, row by row: ``(stride_x * (j + 0.5), stride_y * (i + 0.5))``."""
    ys = (torch.arange(grid[0], dtype=dtype, device=device) + 0.5) * stride[0]
    xs = (torch.arange(grid[1], dtype=dtype, device=device) + 0.5) * stride[1]
    y, x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([x.reshape(-1), y.reshape(-1)], -1)


def normalized_cell_centres(grids: Sequence[GridT], device=None) -> torch.Tensor:
    """(sum h*w, 2) float32: ``((j + 0.5) / w, (i + 0.5) / h)`` of every cell of every grid, grids
    concatenated (computed in float32 as mmdet does: each value the correctly rounded quotient)."""
    points = []
    for h, w in grids:
        extent = torch.tensor([w, h], dtype=torch.float32, device=device)
        points.append(cell_centres((h, w), dtype=torch.float32, device=device) / extent)
    return torch.cat(points)


def reference_points(query_grids: Sequence[GridT], query_strides: Sequence[Sequence[int]],
                     level_grids: Sequence[GridT], level_strides: Sequence[Sequence[int]]) -> torch.Tensor:
    """(1, Lq, L, 2): the (x, y) of every query (all query grids, concatenated) in [0, 1] of the
    extent of each value level, placed in pixels (see the module docstring)."""
    centres = torch.cat([cell_centres(g, s) for g, s in zip(query_grids, query_strides)])
    extents = size_tensor([[g[1] * s[1], g[0] * s[0]] for g, s in zip(level_grids, level_strides)],
                          dtype=torch.float64)  # (L, 2) as (width, height) in pixels
    return (centres[:, None, :] / extents[None]).float()[None]


def value_levels(grids: Sequence[GridT], references: torch.Tensor, device=None) -> ValueLevels:
    """The :class:`ValueLevels` of maps of ``grids`` (h, w) flattened one after the other, read
    from ``references`` (1, Lq, L, 2)."""
    shapes = size_tensor(grids, device=device)
    sizes = shapes[:, 0] * shapes[:, 1]
    starts = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    return ValueLevels(shapes, starts, references.to(device), tuple(tuple(g) for g in grids))
