"""vitadapter: any timm Vision Transformer as a multi-scale dense-prediction backbone.

``from vitadapter import ViTPyramid`` gives a plain ``torch.nn.Module``; the core needs torch and
timm only. When mmsegmentation is installed (the ``[mmseg]`` extra), importing vitadapter also
imports :mod:`vitadapter.engine`, which registers the backbones, ``ViTEncoderDecoder``, heads,
data sets and optimizer constructor in mmseg's registries, so configs load them with
``custom_imports=dict(imports=['vitadapter'])``.
"""
import importlib.util

from .backbones import LevelSpec, ViTAdapter, ViTPyramid
from .necks import Feature2PyramidNeck, SimpleFeaturePyramidNeck, build_pyramid_neck
from .trunk import TimmViTTrunk, TrunkOutput
from .version import __version__
from .weights import CheckpointError, LoadReport, read_state_dict

if importlib.util.find_spec('mmseg') is not None:
    from . import engine  # noqa: F401  (registers the backbones with mmseg)

__all__ = ['ViTPyramid', 'ViTAdapter', 'LevelSpec', 'TimmViTTrunk', 'TrunkOutput', 'Feature2PyramidNeck',
           'SimpleFeaturePyramidNeck', 'build_pyramid_neck', 'CheckpointError', 'LoadReport',
           'read_state_dict', '__version__']
