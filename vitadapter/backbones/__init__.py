"""Backbones: a trunk composed with a neck."""
from .vit_adapter import ViTAdapter
from .vit_pyramid import LevelSpec, ViTPyramid

__all__ = ['ViTPyramid', 'ViTAdapter', 'LevelSpec']
