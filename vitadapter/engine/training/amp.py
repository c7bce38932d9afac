"""Mixed precision on a CPU: bfloat16 autocast inside mmengine's optimizer wrapper.

mmengine's ``AmpOptimWrapper`` asserts that a GPU (or NPU/MLU/MUSA) is present. On a CPU,
autocast runs in bfloat16, whose exponent range equals float32's, so no loss scaling is needed:
``CPUAmpOptimWrapper`` is the plain ``OptimWrapper`` with the forward pass under
``torch.autocast('cpu', dtype=torch.bfloat16)``. ``tools/train.py --amp`` picks it without a GPU.
"""
from contextlib import contextmanager

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``optim_context`` autocasts to ``dtype`` (bfloat16) on the CPU."""

    def __init__(self, *args, dtype: str = 'bfloat16', **kwargs):
        super().__init__(*args, **kwargs)
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError(f"CPU autocast dtype must be 'bfloat16' or 'float16', got {dtype!r}")
        self.cast_dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast('cpu', dtype=self.cast_dtype):
            yield
