"""vitadapter: any timm Vision Transformer as a multi-scale dense-prediction backbone.

``from vitadapter import ViTPyramid`` gives a plain ``torch.nn.Module``; the core needs torch and
timm only. When mmsegmentation is installed (the ``[mmseg]`` extra), importing vitadapter also
imports :mod:`vitadapter.engine`, which registers the backbones, ``ViTEncoderDecoder``, heads,
data sets, optimizer constructor and hooks in mm*'s registries (its docstring lists exactly what
the import changes), so configs load them with ``custom_imports=dict(imports=['vitadapter'])``.

Rooms, each importing only those below it: :mod:`.layers` (shared ops) and :mod:`.weights` (a side
room that knows no model); :mod:`.trunk` (the timm ViT and its block API); :mod:`.necks` and
:mod:`.heads`; :mod:`.backbones` (trunk + neck or adapter); :mod:`.export`; the mm* glue
:mod:`.engine`.
"""
import importlib.util

from .backbones import Backbone, DINOv3Adapter, LevelSpec, ViTAdapter, ViTPyramid
from .necks import Feature2PyramidNeck, SimpleFeaturePyramidNeck, build_pyramid_neck
from .trunk import TimmViTTrunk, TokenSequence, TrunkOutput
from .version import __version__
from .weights import CheckpointError, LoadReport, read_state_dict

if importlib.util.find_spec('mmseg') is not None:
    from . import engine  # noqa: F401  (registers the backbones with mmseg)

__all__ = ['ViTPyramid', 'ViTAdapter', 'DINOv3Adapter', 'Backbone', 'LevelSpec', 'TimmViTTrunk',
           'TokenSequence', 'TrunkOutput', 'Feature2PyramidNeck', 'SimpleFeaturePyramidNeck',
           'build_pyramid_neck', 'CheckpointError', 'LoadReport', 'read_state_dict', '__version__']
