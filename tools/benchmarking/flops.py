"""FLOPs of one call, counted by ``torch.utils.flop_counter`` (one multiply-add = 2 FLOPs), with
formulas for the CPU's fused attention, which torch's counter does not know."""
from typing import Callable

import torch


def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args,
                            out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_backward_flop_count
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def missing_flop_formulas() -> dict:
    """FLOP formulas for the CPU's fused attention, which torch's counter does not know."""
    from torch.utils.flop_counter import flop_registry
    aten = torch.ops.aten
    extra = {}
    for name, formula in (('_scaled_dot_product_flash_attention_for_cpu', _cpu_sdpa_flop),
                          ('_scaled_dot_product_flash_attention_for_cpu_backward', _cpu_sdpa_backward_flop)):
        op = getattr(aten, name, None)
        if op is not None and op not in flop_registry and op.default not in flop_registry:
            extra[op] = formula
    return extra


def count_flops(fn: Callable[[], None]) -> int:
    """FLOPs of one call of ``fn`` (eager), counted by torch's FlopCounterMode plus
    :func:`missing_flop_formulas`."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False, custom_mapping=missing_flop_formulas()) as counter:
        fn()
    return int(counter.get_total_flops())
