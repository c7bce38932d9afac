"""Deformable sampling on the CPU as one sparse-times-dense product (the ``'sparse'`` path).

The deformable attention's output is linear in the values: every query row reads, for each head,
level and point, the 4 bilinear corners of its location, each with the coefficient
``attention weight x bilinear weight`` (0 for a corner outside its level). So with the values as
rows ``V`` ((B * Lv * heads, d): the projected values as they are, no copy) and the outputs as rows
(B * Lq * heads, d) (the layout ``output_proj`` reads, no copy), the whole multi-level sampling is
``out = A @ V`` with a sparse ``A`` of ``K = levels * points * 4`` entries per row: one CSR
sparse-dense product (MKL on x86), where :func:`.deform_attn.pytorch_sampling` runs one
``grid_sample`` per level, materialises every sampled value (B * heads, d, Lq, points) and then
weighs and sums it.

Gradients: the coefficients are plain autograd functions of the locations and weights (tensors of
the entries' size, with no ``d`` factor); :class:`SparseRowsProduct` gives ``dL/dA`` at the stored
entries (``torch.sparse.sampled_addmm``) and ``dL/dV = A^T dL/dout`` (a COO product). What is
stored for the backward pass is the entries (indices, coefficients), not the sampled values.

Same function as the ``grid_sample`` path (``align_corners=False``, zeros outside a level: a
location ``u`` of a level with ``n`` cells is read at ``u * n - 0.5``); equal to the float64
reference in tests/test_deform_attn.py. CPU, float32/float64 only (:func:`sparse_path_applies`).
"""
import warnings
from typing import Sequence, Tuple

import torch

GridT = Tuple[int, int]
SPARSE_DTYPES = (torch.float32, torch.float64)


def sparse_path_applies(value: torch.Tensor) -> bool:
    """Whether the sparse path can run on ``value``: a CPU tensor in float32/float64, in eager mode
    (not traced for ONNX / TorchScript, not compiled: they take the ``grid_sample`` path)."""
    return (value.device.type == 'cpu' and value.dtype in SPARSE_DTYPES
            and not torch.jit.is_tracing() and not torch.jit.is_scripting()
            and not torch.compiler.is_compiling())


def corner_entries(shapes: Sequence[GridT], locations: torch.Tensor, weights: torch.Tensor,
                   lv: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The sparse matrix's entries: (columns, coefficients), both (B, Lq, heads, L, P, 4), row
    after row (rows: b, query, head). Column of a corner = (b * Lv + level start + y * w + x) *
    heads + head, the row of ``value.reshape(-1, d)``; a corner outside its level has coefficient 0
    (and a clamped, valid column).

    The bilinear weight of corner (x_i, y_j) factors into an x part and a y part, and so does its
    inside-the-level test: both are computed per axis on (B, Lq, heads, L, P) tensors (the attention
    weight folded into the y part); only the four final products and column sums make (..., 4)
    tensors. The same numbers as corner-wise arithmetic, with far fewer operations on the largest
    tensors."""
    b, lq, heads, num_levels, points, _ = locations.shape
    dtype, device = locations.dtype, locations.device
    widths = torch.tensor([w for _, w in shapes], dtype=dtype, device=device)[:, None]  # (L, 1)
    heights = torch.tensor([h for h, _ in shapes], dtype=dtype, device=device)[:, None]
    # int32 columns where they fit (half the memory kept for the backward pass; MKL's CSR kernels
    # take them as they are)
    index = torch.int32 if max(b * lv * heads, locations.numel() * 2) < 2 ** 31 else torch.long
    int_widths = torch.tensor([w for _, w in shapes], dtype=index, device=device)[:, None]
    starts = torch.tensor([0] + [h * w for h, w in shapes][:-1], dtype=index, device=device).cumsum(0)[:, None]
    x, y = locations.unbind(-1)
    px, py = x * widths - 0.5, y * heights - 0.5  # (B, Lq, heads, L, P) in cells
    x0, y0 = px.detach().floor(), py.detach().floor()
    fx, fy = px - x0, py - y0  # differentiable: d frac / d location = level size
    # x parts of the corners x0, x0 + 1 and y parts of y0, y0 + 1, each 0 where outside the level
    ax0 = (1 - fx) * ((x0 >= 0) & (x0 < widths)).to(dtype)
    ax1 = fx * ((x0 >= -1) & (x0 < widths - 1)).to(dtype)
    ay0 = weights * (1 - fy) * ((y0 >= 0) & (y0 < heights)).to(dtype)
    ay1 = weights * fy * ((y0 >= -1) & (y0 < heights - 1)).to(dtype)
    # corners (y0,x0) (y0,x1) (y1,x0) (y1,x1), i.e. (x0,y0) (x1,y0) (x0,y1) (x1,y1)
    coefficients = torch.stack([ay0 * ax0, ay0 * ax1, ay1 * ax0, ay1 * ax1], -1)
    # column = (b * Lv + start + y * w + x) * heads + head, with x, y clamped into the level
    cx0 = x0.clamp(min=0).minimum(widths - 1).to(index) * heads
    cx1 = (x0 + 1).clamp(min=0).minimum(widths - 1).to(index) * heads
    offset = (torch.arange(b, dtype=index, device=device) * (lv * heads)).view(b, 1, 1, 1, 1) \
        + torch.arange(heads, dtype=index, device=device).view(1, 1, heads, 1, 1) + starts * heads
    ry0 = y0.clamp(min=0).minimum(heights - 1).to(index) * (int_widths * heads) + offset
    ry1 = (y0 + 1).clamp(min=0).minimum(heights - 1).to(index) * (int_widths * heads) + offset
    columns = torch.stack([ry0 + cx0, ry0 + cx1, ry1 + cx0, ry1 + cx1], -1)
    return columns, coefficients


class SparseRowsProduct(torch.autograd.Function):
    """``out = A @ V`` for ``A`` with ``k`` entries per row (``columns``, ``coefficients``, flat,
    row after row) and dense ``V`` (Rv, d); gradients for the coefficients and ``V``."""

    @staticmethod
    def forward(ctx, coefficients: torch.Tensor, columns: torch.Tensor, value_rows: torch.Tensor,
                k: int) -> torch.Tensor:
        rows = columns.numel() // k
        matrix = _csr(coefficients, columns, k, rows, value_rows.shape[0])
        ctx.save_for_backward(coefficients, columns, value_rows)
        ctx.k = k
        with torch.autocast(value_rows.device.type, enabled=False):  # MKL's sparse products: fp32/fp64
            return matrix @ value_rows

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        coefficients, columns, value_rows = ctx.saved_tensors
        k, rows, rv = ctx.k, grad_out.shape[0], value_rows.shape[0]
        grad_out = grad_out.contiguous().to(value_rows.dtype)
        with torch.autocast(value_rows.device.type, enabled=False):
            return _backward(ctx, grad_out, coefficients, columns, value_rows, k, rows, rv)


def _backward(ctx, grad_out, coefficients, columns, value_rows, k, rows, rv):
    """(dL/dcoefficients, None, dL/dV, None) of :class:`SparseRowsProduct`."""
    grad_coefficients = grad_value = None
    if ctx.needs_input_grad[0]:  # dL/dA_ij = <dL/dout_i, V_j> at the stored entries
        pattern = _csr(torch.zeros_like(coefficients), columns, k, rows, rv)
        grad_coefficients = torch.sparse.sampled_addmm(pattern, grad_out, value_rows.t(),
                                                       beta=0.0).values()
    if ctx.needs_input_grad[2]:  # A^T dL/dout
        row_of_entry = torch.arange(rows, device=columns.device).repeat_interleave(k)
        # indices valid by construction (clamped columns): no invariant check, and no warning
        transposed = torch.sparse_coo_tensor(torch.stack([columns.long(), row_of_entry]), coefficients,
                                             (rv, rows), check_invariants=False)
        grad_value = torch.sparse.mm(transposed, grad_out)
    return grad_coefficients, None, grad_value, None


def _csr(values: torch.Tensor, columns: torch.Tensor, k: int, rows: int, cols: int) -> torch.Tensor:
    crow = torch.arange(0, rows * k + 1, k, dtype=columns.dtype, device=columns.device)
    with warnings.catch_warnings():  # torch calls its sparse CSR support beta
        warnings.simplefilter('ignore', UserWarning)
        return torch.sparse_csr_tensor(crow, columns, values, (rows, cols), check_invariants=False)


def sparse_sampling(value: torch.Tensor, shapes: Sequence[GridT], locations: torch.Tensor,
                    weights: torch.Tensor) -> torch.Tensor:
    """value (B, Lv, heads, d), shapes [(h, w)] of the L levels flattened in value, locations
    (B, Lq, heads, L, P, 2) as (x, y) in [0, 1] of each level, weights (B, Lq, heads, L, P)
    -> (B, Lq, heads * d); one sparse-dense product (see the module doc). All in one dtype."""
    b, lv, heads, d = value.shape
    lq, num_levels, points = locations.shape[1], locations.shape[3], locations.shape[4]
    columns, coefficients = corner_entries(shapes, locations, weights, lv)
    out = SparseRowsProduct.apply(coefficients.reshape(-1), columns.reshape(-1),
                                  value.reshape(b * lv * heads, d), num_levels * points * 4)
    return out.view(b, lq, heads * d)
