"""Building a model only to read its structure (channels, strides, parameter counts).

On the meta device a module costs no memory and no initialisation time, but some timm releases
(before 1.0.20: ``[x.item() for x in torch.linspace(0, drop_path_rate, depth)]``) read tensor values
while building, which the meta device refuses. :func:`build_structure` then builds on the CPU, with
real (untrained) memory; the structure is the same either way.
"""
from typing import Callable, TypeVar

import torch

T = TypeVar('T')


def build_structure(build: Callable[[], T]) -> T:
    """``build()`` on the meta device, or on the CPU where the model's constructor reads a tensor
    value (``Tensor.item() cannot be called on meta tensors``)."""
    try:
        with torch.device('meta'):
            return build()
    except (RuntimeError, NotImplementedError) as err:
        if 'meta' not in str(err):
            raise
    return build()
