"""Where the queries of the injector and the extractor sit on the levels they read.

ViT-Adapter has two token sets: the ViT's patch tokens (one grid, stride = the patch size) and
the spatial prior tokens (three grids, strides 8, 16, 32). The injector's queries are the patch
tokens and read the prior levels; the extractor's queries are the prior tokens and read the patch
grid. Deformable attention takes each query's reference point in [0, 1] of each level.

Reference points are placed in pixels: a query of stride ``s_q`` at cell ``j`` sits at the pixel
``s_q * (j + 0.5)``, and a level of stride ``s`` with ``n`` cells spans ``s * n`` pixels (grids are
top-left aligned, the last cell may overhang the image), so its reference on that level is
``s_q * (j + 0.5) / (s * n)``. A query therefore looks at the same image point on every level, for
any input size and any patch size (14 for DINOv2). For inputs whose sides are multiples of 32 and
patch 16 every level spans the image and this is exactly the official ``(j + 0.5) / n_q`` of
``deform_inputs`` (which assumes such inputs).
"""
from typing import NamedTuple, Sequence, Tuple

import torch

from ...geometry import is_static
from .deform_attn import ValueLevels

GridT = Tuple[int, int]


class InteractionGeometry(NamedTuple):
    """inject: the prior levels seen from the patch tokens; extract: the patch grid seen from the
    prior tokens (queries in the order c2, c3, c4)."""
    inject: ValueLevels
    extract: ValueLevels


def size_tensor(rows: Sequence[Sequence[int]], dtype: torch.dtype = torch.long, device=None) -> torch.Tensor:
    """(len(rows), len(row)) tensor of sizes; symbolic sizes (dynamic-shape tracing, ONNX export)
    become values computed in the graph instead of constants of the example input."""
    if is_static(*(v for row in rows for v in row)):
        return torch.tensor([list(row) for row in rows], dtype=dtype, device=device)
    return torch.stack([torch.stack([torch.full((), v, dtype=dtype, device=device) for v in row])
                        for row in rows])


def cell_centres(grid: GridT, stride: Sequence[int]) -> torch.Tensor:
    """(h*w, 2) pixel (x, y) of the centres of a grid's cells, row by row."""
    ys = (torch.arange(grid[0], dtype=torch.float64) + 0.5) * stride[0]
    xs = (torch.arange(grid[1], dtype=torch.float64) + 0.5) * stride[1]
    y, x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([x.reshape(-1), y.reshape(-1)], -1)


def reference_points(query_grids: Sequence[GridT], query_strides: Sequence[Sequence[int]],
                     level_grids: Sequence[GridT], level_strides: Sequence[Sequence[int]]) -> torch.Tensor:
    """(1, Lq, L, 2): the (x, y) of every query (all query grids, concatenated) in [0, 1] of the
    extent of each value level."""
    centres = torch.cat([cell_centres(g, s) for g, s in zip(query_grids, query_strides)])
    extents = size_tensor([[g[1] * s[1], g[0] * s[0]] for g, s in zip(level_grids, level_strides)],
                          dtype=torch.float64)  # (L, 2) as (width, height) in pixels
    return (centres[:, None, :] / extents[None]).float()[None]


def value_levels(grids: Sequence[GridT], references: torch.Tensor, device) -> ValueLevels:
    shapes = size_tensor(grids, device=device)
    sizes = shapes[:, 0] * shapes[:, 1]
    starts = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    return ValueLevels(shapes, starts, references.to(device), tuple(tuple(g) for g in grids))


def interaction_geometry(vit_grid: GridT, vit_stride: Sequence[int], prior_grids: Sequence[GridT],
                         prior_strides: Sequence[int], device=None) -> InteractionGeometry:
    """Geometry of one forward pass: ``vit_grid`` patch tokens of ``vit_stride`` pixels and the
    prior levels ``prior_grids`` (c2, c3, c4) of ``prior_strides`` (8, 16, 32)."""
    prior_strides = [(s, s) for s in prior_strides]
    inject = reference_points([vit_grid], [vit_stride], prior_grids, prior_strides)
    extract = reference_points(prior_grids, prior_strides, [vit_grid], [vit_stride])
    return InteractionGeometry(inject=value_levels(prior_grids, inject, device),
                               extract=value_levels([vit_grid], extract, device))
