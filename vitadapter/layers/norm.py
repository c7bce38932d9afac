"""Norm layers for NCHW feature maps, configured the mmengine way (``norm_cfg``), without mmcv.

``dict(type='LN2d')`` is a LayerNorm over channels of an NCHW map (timm's ``LayerNorm2d``, the norm
ViTDet's pyramid uses). It needs no batch statistics, so it behaves the same on one CPU, one GPU
and under DDP, which is why it is the default everywhere in vitadapter. The other built-in types
are torch's, with mmcv's names and config keys: ``'BN'``/``'BN2d'`` (``BatchNorm2d``),
``'SyncBN'`` (``SyncBatchNorm``), ``'GN'`` (``GroupNorm``, ``num_groups`` required) and
``'IN'``/``'IN2d'`` (``InstanceNorm2d``). Every other key (``eps``, ``momentum``, ``affine``...) goes
to the layer; ``requires_grad=False`` freezes its parameters; ``None`` means no norm.
:func:`register_norm` adds a type (the mmseg glue adds ``'CPUSyncBN'``).
"""
from typing import Callable, Dict, Optional

import torch.nn as nn
from timm.layers import get_norm_layer

DEFAULT_NORM_CFG = dict(type='LN2d', eps=1e-6)

NormBuilder = Callable[..., nn.Module]  # builder(num_channels, **cfg) -> module


def _group_norm(num_channels: int, num_groups: Optional[int] = None, **kwargs) -> nn.GroupNorm:
    if num_groups is None:
        raise ValueError("norm_cfg type 'GN' needs num_groups, e.g. dict(type='GN', num_groups=32)")
    return nn.GroupNorm(num_groups, num_channels, **kwargs)


# timm's norm layers by timm's names where it has them (get_norm_layer), torch's otherwise
_NORMS: Dict[str, NormBuilder] = {
    'LN2d': get_norm_layer('layernorm2d'),
    'BN': get_norm_layer('batchnorm2d'),
    'BN2d': get_norm_layer('batchnorm2d'),
    'SyncBN': nn.SyncBatchNorm,
    'GN': _group_norm,
    'IN': nn.InstanceNorm2d,
    'IN2d': nn.InstanceNorm2d,
}


def register_norm(name: str, builder: NormBuilder) -> NormBuilder:
    """Make ``dict(type=name, **kwargs)`` build ``builder(num_channels, **kwargs)``; returns builder.

    Registering the same builder again is a no-op; another builder under a taken name is an error.
    """
    known = _NORMS.get(name)
    if known is not None and known is not builder:
        raise ValueError(f"norm type {name!r} is already registered to {known!r}; pick another name")
    _NORMS[name] = builder
    return builder


def norm_types() -> list:
    """The registered norm type names, sorted."""
    return sorted(_NORMS)


def build_norm2d(norm_cfg: Optional[dict], num_channels: int) -> nn.Module:
    """Build a norm layer for (B, num_channels, H, W) maps from an mmengine-style config."""
    if norm_cfg is None:
        return nn.Identity()
    if not isinstance(norm_cfg, dict) or 'type' not in norm_cfg:
        raise ValueError(f"norm_cfg must be a dict with a 'type' key (e.g. dict(type='LN2d')), "
                         f"got {norm_cfg!r}")
    cfg = dict(norm_cfg)
    norm_type = cfg.pop('type')
    requires_grad = cfg.pop('requires_grad', True)
    if norm_type not in _NORMS:
        raise ValueError(f"unknown norm type {norm_type!r} in norm_cfg; known types: {norm_types()} "
                         f"(register others with vitadapter.layers.register_norm)")
    layer = _NORMS[norm_type](num_channels, **cfg)
    for param in layer.parameters():
        param.requires_grad_(requires_grad)
    return layer
