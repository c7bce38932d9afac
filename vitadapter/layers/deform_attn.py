"""Multi-scale deformable attention (Deformable DETR) with the official ViT-Adapter parameters.

Every query predicts, per head, ``num_points`` sampling offsets around its reference point on
every value level and a softmax weight for each; the output is the weighted sum of the values
bilinearly sampled there (zeros outside a level). The parameters and their names are those of the
``MSDeformAttn`` module of the official ViT-Adapter code, so its checkpoints load as they are:

* ``sampling_offsets``: Linear C -> heads * levels * points * 2 (x, y offsets in level cells);
* ``attention_weights``: Linear C -> heads * levels * points (softmax over levels * points);
* ``value_proj``: Linear C -> C * ratio (ViT-Adapter-B/L sample half-width values, ratio 0.5);
* ``output_proj``: Linear C * ratio -> C.

The sampling is our own plain PyTorch: on the CPU one sparse-dense product for all levels
(:mod:`.sparse_sampling`, ``'sparse'``: the fastest there, and it stores no sampled values for the
backward pass); elsewhere, and when traced (ONNX) or compiled, :func:`pytorch_sampling` (one
``grid_sample`` per level, any device, differentiable by autograd). A location ``u`` in [0, 1] of a level with ``n`` cells is
read at cell coordinate ``u * n - 0.5`` (``align_corners=False``), zeros outside the level. Where
mmcv is installed with its compiled CUDA ops, ``implementation='auto'`` uses its
``MultiScaleDeformableAttnFunction`` kernel for CUDA tensors (same semantics, less memory); mmcv is
imported only then, lazily, and its absence just means the PyTorch path.

Precision: the sampling runs in the wider of the values' and the locations' dtypes, and the module
computes locations in at least float32, so under bf16/fp16 autocast a location near the far edge
of a 64-cell level is not off by a tenth of a cell (bf16 has 8 mantissa bits).
"""
import math
from functools import lru_cache
from typing import Callable, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .residual import linear_residual
from .sparse_sampling import sparse_path_applies, sparse_sampling

IMPLEMENTATIONS = ('auto', 'pytorch', 'sparse', 'compiled')
IM2COL_STEP = 64  # the official value: images per kernel launch chunk


class ValueLevels(NamedTuple):
    """The levels a deformable attention reads, flattened into one token sequence.

    spatial_shapes: (L, 2) long, (h, w) of each level. level_start_index: (L,) long, where each
    level starts in the sequence. reference_points: (1, Lq, L, 2) float, (x, y) of every query on
    every level, in [0, 1] of that level's extent.
    """
    spatial_shapes: torch.Tensor
    level_start_index: torch.Tensor
    reference_points: torch.Tensor
    grids: Optional[Tuple[Tuple[int, int], ...]] = None

    def level_grids(self):
        """[(h, w)] of the levels: ``grids`` when given (ints, symbolic in a traced graph), else
        read from ``spatial_shapes``."""
        return list(self.grids) if self.grids is not None else self.spatial_shapes.tolist()


@lru_cache(maxsize=None)
def _compiled_function() -> Optional[Callable]:
    """mmcv's ``MultiScaleDeformableAttnFunction.apply`` if mmcv has its CUDA ops, else None."""
    try:
        from mmcv.ops import get_compiling_cuda_version
        from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction
    except (ImportError, OSError):  # no mmcv, or mmcv built without its ext module
        return None
    if get_compiling_cuda_version() in ('not available', ''):
        return None
    return MultiScaleDeformableAttnFunction.apply


def compiled_kernel_available() -> bool:
    """Whether mmcv is installed with its compiled CUDA kernels (``MMCV_WITH_OPS=1`` on a CUDA
    machine). Optional: without it every tensor goes through :func:`pytorch_sampling`."""
    return _compiled_function() is not None


def pytorch_sampling(value: torch.Tensor, shapes, locations: torch.Tensor,
                     weights: torch.Tensor) -> torch.Tensor:
    """Weighted bilinear reads, one ``grid_sample`` per level on (B * heads, d, h, w) maps.

    value (B, Lv, heads, d), shapes [(h, w)] of the L levels flattened in value, locations
    (B, Lq, heads, L, P, 2) as (x, y) in [0, 1] of each level, weights (B, Lq, heads, L, P)
    -> (B, Lq, heads * d), in the dtype of value and locations.
    """
    b, lv, heads, d = value.shape
    lq, num_levels, points = locations.shape[1], locations.shape[3], locations.shape[4]
    # the only copy of the values: (B, Lv, heads, d) -> (B * heads, d, Lv); a level is a view
    maps = value.permute(0, 2, 3, 1).reshape(b * heads, d, lv)
    # grid_sample's [-1, 1] grid, level-major so that each level's grid is one slice
    grids = locations.permute(0, 2, 3, 1, 4, 5).reshape(b * heads, num_levels, lq, points, 2) * 2 - 1
    weights = weights.permute(0, 2, 3, 1, 4).reshape(b * heads, num_levels, 1, lq, points)
    out = None
    start = 0
    for level, (h, w) in enumerate(shapes):
        level_map = maps[:, :, start:start + h * w].view(b * heads, d, h, w)
        start += h * w
        sampled = F.grid_sample(level_map, grids[:, level], mode='bilinear', padding_mode='zeros',
                                align_corners=False)  # (B * heads, d, Lq, P)
        level_out = (sampled * weights[:, level]).sum(-1)  # (B * heads, d, Lq)
        out = level_out if out is None else out + level_out
    return out.view(b, heads * d, lq).transpose(1, 2)


def deformable_sampling(value: torch.Tensor, levels: ValueLevels, locations: torch.Tensor,
                        weights: torch.Tensor, implementation: str = 'auto') -> torch.Tensor:
    """value (B, Lv, heads, d), locations (B, Lq, heads, L, P, 2), weights (B, Lq, heads, L, P)
    -> (B, Lq, heads * d) in value's dtype.

    ``implementation``: 'pytorch' (:func:`pytorch_sampling`, any device), 'sparse' (one CPU
    sparse-dense product, :mod:`.sparse_sampling`; float32/float64 CPU tensors in eager mode),
    'compiled' (mmcv's CUDA kernel; needs mmcv's compiled ops and CUDA tensors) or 'auto' (compiled
    when both hold; else sparse where it applies; else pytorch). All sample in the wider of value's
    and locations' dtypes.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation={implementation!r} is not one of {IMPLEMENTATIONS}")
    b, lq, heads, num_levels, points, _ = locations.shape
    if (value.shape[0], value.shape[2]) != (b, heads) or weights.shape != locations.shape[:-1] \
            or levels.spatial_shapes.shape[0] != num_levels:
        raise ValueError(f"deformable sampling: value {tuple(value.shape)} (B, Lv, heads, d), "
                         f"locations {tuple(locations.shape)} (B, Lq, heads, L, P, 2) and weights "
                         f"{tuple(weights.shape)} (B, Lq, heads, L, P) for "
                         f"{levels.spatial_shapes.shape[0]} levels do not agree")
    use_compiled = implementation == 'compiled' or (
        implementation == 'auto' and value.is_cuda and compiled_kernel_available())
    if use_compiled and not (value.is_cuda and compiled_kernel_available()):
        raise RuntimeError(f"implementation='compiled' needs CUDA tensors (got {value.device}) and mmcv "
                           f"installed with its compiled CUDA ops (available: "
                           f"{compiled_kernel_available()}); use implementation='auto' or 'pytorch'")
    dtype = torch.promote_types(value.dtype, locations.dtype)
    args = value.to(dtype), locations.to(dtype), weights.to(dtype)
    use_sparse = not use_compiled and implementation in ('auto', 'sparse') and sparse_path_applies(args[0])
    if implementation == 'sparse' and not use_sparse:
        raise RuntimeError(f"implementation='sparse' needs float32/float64 CPU tensors in eager mode "
                           f"(got {args[0].dtype} on {value.device}); use implementation='auto'")
    if use_sparse:
        out = sparse_sampling(args[0], levels.level_grids(), args[1], args[2])
    elif use_compiled:
        out = _compiled_function()(args[0], levels.spatial_shapes, levels.level_start_index,
                                   args[1], args[2], IM2COL_STEP)
    else:
        out = pytorch_sampling(args[0], levels.level_grids(), args[1], args[2])
    return out.to(value.dtype)


SHORT_SOFTMAX = 32  # softmax widths (levels x points) taken as columns on the CPU


def softmax_last(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension. Where that dimension is short (the attention weights' levels x
    points: 4 to 16) on the CPU in eager mode, it runs as the softmax over the first dimension of
    the transposed (n, rows) matrix: torch's CPU softmax along a short last dimension is 4-10x
    slower than along the first dimension of a wide matrix, forward and backward. Same values up to
    rounding."""
    n = x.shape[-1]
    if (x.device.type != 'cpu' or n > SHORT_SOFTMAX or torch.jit.is_tracing() or torch.jit.is_scripting()
            or torch.compiler.is_compiling()):
        return F.softmax(x, -1)
    return F.softmax(x.reshape(-1, n).t().contiguous(), 0).t().reshape(x.shape)


class DeformableAttention(nn.Module):
    """Multi-scale deformable cross-attention (official ``MSDeformAttn`` layout).

    Args:
        dim: query and output width C.
        num_heads: attention heads; C * ratio must be divisible by them.
        num_levels: value levels (3 for the injector: strides 8/16/32; 1 for the extractor).
        num_points: sampling points per head and level.
        ratio: width of the sampled values relative to C.
        implementation: 'auto' (compiled kernel on CUDA when mmcv has it, the sparse product on the
            CPU, else grid_sample), 'pytorch', 'sparse', 'compiled'.

    forward: query (B, Lq, C), value (B, Lv, C), levels (:class:`ValueLevels`) -> (B, Lq, C).
    """

    def __init__(self, dim: int, num_heads: int, num_levels: int, num_points: int = 4,
                 ratio: float = 1.0, implementation: str = 'auto'):
        super().__init__()
        value_dim = int(dim * ratio)
        if value_dim % num_heads:
            raise ValueError(f"deformable attention: value width {value_dim} (dim {dim} x ratio "
                             f"{ratio}) is not divisible by {num_heads} heads; change deform_num_heads "
                             f"or deform_ratio")
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation={implementation!r} is not one of {IMPLEMENTATIONS}")
        self.num_heads, self.num_levels, self.num_points = num_heads, num_levels, num_points
        self.value_dim = value_dim
        self.implementation = implementation
        self.sampling_offsets = nn.Linear(dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(dim, value_dim)
        self.output_proj = nn.Linear(value_dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR's initialisation: head h starts sampling along direction 2*pi*h/heads,
        point p at distance p + 1 cells, with uniform attention weights."""
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.num_heads, dtype=torch.float32) * (2 * math.pi / self.num_heads)
        directions = torch.stack([angles.cos(), angles.sin()], -1)
        directions = directions / directions.abs().max(-1, keepdim=True)[0]
        distances = torch.arange(1, self.num_points + 1, dtype=torch.float32)
        grid = directions[:, None, None, :] * distances[None, None, :, None]
        grid = grid.expand(self.num_heads, self.num_levels, self.num_points, 2)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for linear in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)

    def sampling(self, query: torch.Tensor, levels: ValueLevels):
        """Where each query samples and with which weights: locations (B, Lq, heads, L, P, 2) in
        [0, 1] of each level (float32 or wider), weights (B, Lq, heads, L, P) summing to 1 over
        levels and points."""
        b, lq, _ = query.shape
        heads, num_levels, points = self.num_heads, self.num_levels, self.num_points
        offsets = self.sampling_offsets(query).view(b, lq, heads, num_levels, points, 2)
        weights = self.attention_weights(query).view(b, lq, heads, num_levels * points)
        weights = softmax_last(weights).view(b, lq, heads, num_levels, points)
        # at least float32: in bf16 a location near 1 would be off by up to 2^-9 of the level
        offsets = offsets.to(torch.promote_types(offsets.dtype, torch.float32))
        cells = levels.spatial_shapes.flip(-1).to(offsets.dtype)  # (L, 2) as (w, h)
        ref = levels.reference_points.to(offsets.dtype)
        locations = ref[:, :, None, :, None, :] + offsets / cells[None, None, None, :, None, :]
        return locations, weights

    def forward(self, query: torch.Tensor, value: torch.Tensor, levels: ValueLevels,
                residual: Optional[torch.Tensor] = None, scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        """query (B, Lq, C), value (B, Lv, C) -> (B, Lq, C); with ``residual`` (B, Lq, C) (and a
        per-channel ``scale`` (C,)): ``residual + scale * output``, the residual accumulated by the
        output projection's GEMM (:func:`.residual.linear_residual`)."""
        b, lv, _ = value.shape
        grids = levels.level_grids()
        if lv != sum(h * w for h, w in grids) or len(grids) != self.num_levels:
            raise ValueError(f"deformable attention expects {self.num_levels} value levels; got "
                             f"{lv} value tokens for levels {grids}")
        value = self.value_proj(value).view(b, lv, self.num_heads, self.value_dim // self.num_heads)
        locations, weights = self.sampling(query, levels)
        out = deformable_sampling(value, levels, locations, weights, self.implementation)
        if residual is None:
            return self.output_proj(out) if scale is None else scale * self.output_proj(out)
        return linear_residual(residual, out, self.output_proj, scale)
