"""Building a backbone-level variant: timm's trunk, ViTPyramid's pyramids, ViTAdapter, the mmseg
baselines, EoMT, or the config's backbone as configured."""
import argparse
from typing import Tuple

import torch.nn as nn

from vitadapter import DINOv3Adapter, ViTAdapter, ViTPyramid

from .catalogue import EOMT_VARIANTS, MMSEG_VARIANTS, VARIANTS
from .config import load_config
from .eomt import build_eomt
from .mmseg_baselines import BackboneWithNeck, build_mmseg, mmseg_neck_cfg, mmseg_vit_cfg
from .vit import adapter_kwargs, trunk_spec, vit_geometry


def build_backbone_variant(args: argparse.Namespace, variant: str, size: Tuple[int, int]) -> nn.Module:
    """A backbone-level variant (images -> levels, or the trunk's :class:`TrunkOutput`; EoMT:
    per-class scores in eval, its predictions in training)."""
    if variant in EOMT_VARIANTS:
        return build_eomt(args, size)
    spec = trunk_spec(args)
    cp = args.grad_checkpointing
    if variant == 'backbone':
        cfg = dict(load_config(args).model['backbone'], pretrained=False, checkpoint=None,
                   drop_path_rate=0.0, img_size=tuple(size))
        if cp:
            cfg['grad_checkpointing'] = True
        return build_mmseg(cfg)
    if variant == 'official-adapter':
        from .official_adapter import build_official_adapter, official_dir
        geometry = vit_geometry(spec)
        return build_official_adapter(official_dir(args.official_adapter_dir), geometry['embed_dims'],
                                      geometry['num_layers'], size, geometry['patch_size'], cp)
    if variant.startswith('adapter'):
        kwargs = adapter_kwargs(spec, size, variant)
        kwargs['grad_checkpointing'] = kwargs.get('grad_checkpointing', False) or cp
        cls = DINOv3Adapter if kwargs.pop('type', 'ViTAdapter') == 'DINOv3Adapter' else ViTAdapter
        return cls(**kwargs)
    if variant in MMSEG_VARIANTS:
        geometry = vit_geometry(spec)
        if variant.startswith('trunk-'):
            vit = ViTPyramid(spec.model_name, out_indices=spec.out_indices, img_size=tuple(size),
                             grad_checkpointing=cp, **spec.kwargs).trunk
        else:
            vit = build_mmseg(mmseg_vit_cfg(geometry, size, cp))
        if variant == 'mmseg-vit':
            return vit
        neck = build_mmseg(mmseg_neck_cfg(variant.split('-')[1], geometry['embed_dims']))
        return BackboneWithNeck(vit, neck)
    kwargs = dict(spec.kwargs, **VARIANTS[variant])
    kwargs.setdefault('out_indices', spec.out_indices)
    if cp:
        kwargs['grad_checkpointing'] = True
    model = ViTPyramid(spec.model_name, img_size=tuple(size), **kwargs)
    return model.trunk if variant == 'trunk' else model
