"""Backbones: a trunk composed with a neck or an adapter, each describing its levels the same way
(:class:`~vitadapter.backbones.base.Backbone`: ``feature_info``, ``output_shape``, ``output_sizes``)."""
from .base import Backbone, LevelSpec
from .dinov3_adapter import DINOv3Adapter
from .vit_adapter import ViTAdapter
from .vit_adapter_checkpoint import (OFFICIAL_CONFIGS, convert_official_file, convert_vit_adapter_official,
                                     describe_official, is_official_vit_adapter, read_official_checkpoint)
from .vit_pyramid import ViTPyramid

__all__ = ['Backbone', 'LevelSpec', 'ViTPyramid', 'ViTAdapter', 'DINOv3Adapter', 'OFFICIAL_CONFIGS',
           'convert_official_file', 'convert_vit_adapter_official', 'describe_official',
           'is_official_vit_adapter', 'read_official_checkpoint']
