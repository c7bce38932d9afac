"""Backbones: a trunk composed with a neck."""
from .vit_pyramid import LevelSpec, ViTPyramid

__all__ = ['ViTPyramid', 'LevelSpec']
