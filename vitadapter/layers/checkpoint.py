"""Gradient checkpointing for the adapter's modules (``grad_checkpointing=True``)."""
from typing import Callable

import torch
import torch.utils.checkpoint


def maybe_checkpoint(fn: Callable, enabled: bool, *args):
    """``fn(*args)``, recomputed in the backward pass instead of stored when ``enabled`` and
    gradients are being recorded."""
    if enabled and torch.is_grad_enabled() and any(
            isinstance(a, torch.Tensor) and a.requires_grad for a in args):
        return torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)
