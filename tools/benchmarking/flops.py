"""FLOPs of one call, counted by ``torch.utils.flop_counter`` (one multiply-add = 2 FLOPs), with
formulas for the CPU's fused attention, which torch's counter does not know, and for sparse x dense
products (ViTAdapter's CPU sampling), which it counts as if the sparse matrix were dense."""
from typing import Callable

import torch


def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args,
                            out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_backward_flop_count
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _is_sparse(t) -> bool:
    return isinstance(t, torch.Tensor) and t.layout != torch.strided


def _mm_flop(a, b, *args, out_val=None, **kwargs) -> int:
    """``a @ b``: 2 x nonzeros x columns of b when ``a`` is sparse (the work done), else dense."""
    if _is_sparse(a):
        return 2 * a._nnz() * b.shape[-1]
    from torch.utils.flop_counter import mm_flop
    return mm_flop(a.shape, b.shape)


def _sparse_addmm_flop(bias, a, b, *args, out_val=None, **kwargs) -> int:
    """``bias + a @ b`` with sparse ``a`` (autograd's ``A^T @ dL/dout``)."""
    return 2 * a._nnz() * b.shape[-1]


def _sampled_addmm_flop(pattern, a, b, *args, out_val=None, **kwargs) -> int:
    """``(a @ b)`` at the entries of the sparse ``pattern`` only: one dot product per entry."""
    return 2 * pattern._nnz() * a.shape[-1]


for _formula in (_mm_flop, _sparse_addmm_flop, _sampled_addmm_flop):
    _formula._get_raw = True  # FlopCounterMode passes the tensors, not their shapes (nnz is needed)


def missing_flop_formulas() -> dict:
    """FLOP formulas torch's counter lacks (the CPU's fused attention) or gets wrong (sparse x
    dense products, counted as dense: for ViTAdapter's sampling most of that count is zeros)."""
    from torch.utils.flop_counter import flop_registry
    aten = torch.ops.aten
    extra = {aten.mm: _mm_flop}
    for name, formula in (('_sparse_addmm', _sparse_addmm_flop), ('sparse_sampled_addmm', _sampled_addmm_flop)):
        if hasattr(aten, name):
            extra[getattr(aten, name)] = formula
    for name, formula in (('_scaled_dot_product_flash_attention_for_cpu', _cpu_sdpa_flop),
                          ('_scaled_dot_product_flash_attention_for_cpu_backward', _cpu_sdpa_backward_flop)):
        op = getattr(aten, name, None)
        if op is not None and op not in flop_registry and op.default not in flop_registry:
            extra[op] = formula
    return extra


class _TotalOnly:
    """In place of FlopCounterMode's module tracker: every FLOP counted in the total ("Global")
    only. Torch's tracker (a per-module breakdown, unused here) hooks the autograd graph of every
    module input that requires grad and fails on a view of a parameter made under no_grad
    (``weight.unsqueeze(0).expand(...)``: requires_grad, no grad_fn; Mask2Former's queries)."""
    parents = {'Global'}

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return None


def count_flops(fn: Callable[[], None]) -> int:
    """FLOPs of one call of ``fn`` (eager), counted by torch's FlopCounterMode plus
    :func:`missing_flop_formulas` (the total only: :class:`_TotalOnly`)."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False, custom_mapping=missing_flop_formulas())
    counter.mod_tracker = _TotalOnly()
    with counter:
        fn()
    return int(counter.get_total_flops())
