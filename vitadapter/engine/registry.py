"""Register vitadapter's backbones in mmsegmentation's ``MODELS`` registry, and in mmdetection's.

mmseg configs build models in the ``mmseg`` scope (``default_scope='mmseg'``), whose registry is
``mmseg.registry.MODELS``; ``custom_imports=dict(imports=['vitadapter'])`` imports this module
through ``vitadapter/__init__.py``.

Where mmdet is installed and its registry imports, the same import also registers, in the ``mmdet``
scope (``default_scope='mmdet'``): the backbones, ``LastLevelMaxPool`` (the stride-64 level of
ViTDet's pyramid, a neck), ``LN2d`` (timm's ``LayerNorm2d``, the norm of ViTDet's heads, unless
another package registered an ``LN2d`` there first), the layer-decay optimizer constructor and the
CPU mixed-precision optimizer wrapper. Without a working mmdet nothing happens here: detection
configs also import :mod:`vitadapter.engine.detection`, which says what is missing.
"""
import importlib.util

from mmseg.registry import MODELS
from timm.layers import LayerNorm2d

from ..backbones import DINOv3Adapter, ViTAdapter, ViTPyramid
from ..necks import LastLevelMaxPool
from .training.amp import CPUAmpOptimWrapper
from .training.optimizer import ViTLayerDecayOptimizerConstructor

REGISTERED = (ViTPyramid, ViTAdapter, DINOv3Adapter)
MMDET_MODELS = (ViTPyramid, ViTAdapter, DINOv3Adapter, LastLevelMaxPool)


def _register(registry, cls) -> None:
    # module_dict, not get(): get() imports the scope's whole model zoo (mmdet.models: seconds)
    if registry.module_dict.get(cls.__name__) is not cls:
        registry.register_module(module=cls, force=True)


def mmdet_registries():
    """mmdet's ``(MODELS, OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS)``, or None where mmdet is
    absent or its registry does not import (mmdet checks the mmcv version when imported)."""
    if importlib.util.find_spec('mmdet') is None:
        return None
    try:
        from mmdet import registry
    except Exception:  # a broken or mismatched mmdet: detection.py reports it when asked for
        return None
    return registry.MODELS, registry.OPTIM_WRAPPER_CONSTRUCTORS, registry.OPTIM_WRAPPERS


def register_mmdet() -> bool:
    """Register vitadapter's classes in mmdet's registries; False where mmdet cannot be used."""
    registries = mmdet_registries()
    if registries is None:
        return False
    models, constructors, wrappers = registries
    for cls in MMDET_MODELS:
        _register(models, cls)
    if 'LN2d' not in models.module_dict:  # keep an LN2d registered by another package (same maths)
        models.register_module(name='LN2d', module=LayerNorm2d)
    _register(constructors, ViTLayerDecayOptimizerConstructor)
    _register(wrappers, CPUAmpOptimWrapper)
    return True


def register_all() -> None:
    """Register every backbone once (re-imports and reloads are harmless)."""
    for cls in REGISTERED:
        if MODELS.get(cls.__name__) is not cls:
            MODELS.register_module(module=cls, force=True)
    register_mmdet()
