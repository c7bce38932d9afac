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
    (and a clamped, valid column)."""
    b, lq, heads, num_levels, points, _ = locations.shape
    dtype, device = locations.dtype, locations.device
    sizes = torch.tensor([[w, h] for h, w in shapes], dtype=dtype, device=device)  # (L, 2) as (w, h)
    starts = torch.tensor([0] + [h * w for h, w in shapes][:-1], device=device).cumsum(0)
    pixel = locations * sizes[:, None, :] - 0.5  # (B, Lq, heads, L, P, 2) in cells
    corner0 = pixel.detach().floor()
    frac = pixel - corner0  # differentiable: d frac / d location = level size
    fx, fy = frac[..., 0], frac[..., 1]
    gx, gy = 1 - fx, 1 - fy
    bilinear = torch.stack([gx * gy, fx * gy, gx * fy, fx * fy], -1)  # corners (x0,y0) (x1,y0) (x0,y1) (x1,y1)
    x0, y0 = corner0[..., 0].long(), corner0[..., 1].long()
    dx = torch.tensor([0, 1, 0, 1], device=device)
    dy = torch.tensor([0, 0, 1, 1], device=device)
    xs, ys = x0[..., None] + dx, y0[..., None] + dy  # (B, Lq, heads, L, P, 4)
    w_l = sizes[:, 0].long()[:, None, None]  # (L, 1, 1), broadcast over P and corners
    h_l = sizes[:, 1].long()[:, None, None]
    inside = (xs >= 0) & (xs < w_l) & (ys >= 0) & (ys < h_l)
    cells = ys.clamp(min=0).minimum(h_l - 1) * w_l + xs.clamp(min=0).minimum(w_l - 1) + starts[:, None, None]
    batch = torch.arange(b, device=device).view(b, 1, 1, 1, 1, 1) * lv
    head = torch.arange(heads, device=device).view(1, 1, heads, 1, 1, 1)
    columns = (batch + cells) * heads + head
    coefficients = weights[..., None] * bilinear * inside.to(dtype)
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
        transposed = torch.sparse_coo_tensor(torch.stack([columns, row_of_entry]), coefficients,
                                             (rv, rows))
        grad_value = torch.sparse.mm(transposed, grad_out)
    return grad_coefficients, None, grad_value, None


def _csr(values: torch.Tensor, columns: torch.Tensor, k: int, rows: int, cols: int) -> torch.Tensor:
    crow = torch.arange(0, rows * k + 1, k, device=columns.device)
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
