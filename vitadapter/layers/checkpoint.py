"""Gradient checkpointing where it is switched on: the one helper the trunk's blocks, the pyramid's
upsampling levels and the adapter's injectors and extractors use."""
from typing import Callable

import torch
import torch.utils.checkpoint


def checkpoint_if(enabled: bool, fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)``, recomputed in the backward pass instead of stored when ``enabled``
    and autograd is recording (torch's non-reentrant checkpointing: gradients reach ``fn``'s
    parameters whether or not its inputs require them)."""
    if enabled and torch.is_grad_enabled():
        return torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False, **kwargs)
    return fn(*args, **kwargs)
