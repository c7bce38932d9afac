"""Register vitadapter's backbones in mmsegmentation's ``MODELS`` registry.

mmseg configs build models in the ``mmseg`` scope (``default_scope='mmseg'``), whose registry is
``mmseg.registry.MODELS``; ``custom_imports=dict(imports=['vitadapter'])`` imports this module
through ``vitadapter/__init__.py``.
"""
from mmseg.registry import MODELS

from ..backbones import ViTAdapter, ViTPyramid

REGISTERED = (ViTPyramid, ViTAdapter)


def register_all() -> None:
    """Register every backbone once (re-imports and reloads are harmless)."""
    for cls in REGISTERED:
        if MODELS.get(cls.__name__) is not cls:
            MODELS.register_module(module=cls, force=True)
