"""Backbones: a trunk composed with a neck."""
from .vit_adapter import ViTAdapter
from .vit_adapter_checkpoint import (OFFICIAL_CONFIGS, convert_official_file, convert_vit_adapter_official,
                                     describe_official, is_official_vit_adapter, read_official_checkpoint)
from .vit_pyramid import LevelSpec, ViTPyramid

__all__ = ['ViTPyramid', 'ViTAdapter', 'LevelSpec', 'OFFICIAL_CONFIGS', 'convert_official_file',
           'convert_vit_adapter_official', 'describe_official', 'is_official_vit_adapter',
           'read_official_checkpoint']
