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

from ...layers import ValueLevels, reference_points, value_levels

GridT = Tuple[int, int]


class InteractionGeometry(NamedTuple):
    """inject: the prior levels seen from the patch tokens; extract: the patch grid seen from the
    prior tokens (queries in the order c2, c3, c4)."""
    inject: ValueLevels
    extract: ValueLevels


def interaction_geometry(vit_grid: GridT, vit_stride: Sequence[int], prior_grids: Sequence[GridT],
                         prior_strides: Sequence[int], device=None) -> InteractionGeometry:
    """Geometry of one forward pass: ``vit_grid`` patch tokens of ``vit_stride`` pixels and the
    prior levels ``prior_grids`` (c2, c3, c4) of ``prior_strides`` (8, 16, 32)."""
    prior_strides = [(s, s) for s in prior_strides]
    inject = reference_points([vit_grid], [vit_stride], prior_grids, prior_strides)
    extract = reference_points(prior_grids, prior_strides, [vit_grid], [vit_stride])
    return InteractionGeometry(inject=value_levels(prior_grids, inject, device),
                               extract=value_levels([vit_grid], extract, device))
