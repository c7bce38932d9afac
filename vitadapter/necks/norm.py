"""Norm layers for NCHW feature maps, configured the mmengine way (``norm_cfg``).

``dict(type='LN2d')`` is a LayerNorm over channels of an NCHW map (timm's ``LayerNorm2d``, the norm
ViTDet's pyramid uses). It needs no batch statistics, so it behaves the same on one CPU, one GPU
and under DDP, which is why it is the default everywhere in vitadapter. Every other type
(``'BN'``, ``'SyncBN'``, ``'GN'``...) goes to mmcv's ``build_norm_layer``; ``None`` means no norm.
"""
from typing import Optional

import torch.nn as nn
from timm.layers import LayerNorm2d

DEFAULT_NORM_CFG = dict(type='LN2d', eps=1e-6)


def build_norm2d(norm_cfg: Optional[dict], num_channels: int) -> nn.Module:
    """Build a norm layer for (B, num_channels, H, W) maps from an mmengine-style config."""
    if norm_cfg is None:
        return nn.Identity()
    if not isinstance(norm_cfg, dict) or 'type' not in norm_cfg:
        raise ValueError(f"norm_cfg must be a dict with a 'type' key (e.g. dict(type='LN2d')), "
                         f"got {norm_cfg!r}")
    cfg = dict(norm_cfg)
    norm_type = cfg.pop('type')
    if norm_type == 'LN2d':
        cfg.pop('requires_grad', None)
        return LayerNorm2d(num_channels, **cfg)
    from mmcv.cnn import build_norm_layer  # mmcv's norms: BN, SyncBN, GN, IN, ...
    try:
        return build_norm_layer(dict(norm_cfg), num_channels)[1]
    except KeyError as err:
        raise ValueError(f"unknown norm type {norm_type!r} in norm_cfg; use 'LN2d' (default), "
                         f"'BN', 'SyncBN', 'GN' or another mmcv norm") from err
