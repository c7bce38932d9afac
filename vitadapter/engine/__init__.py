"""mmsegmentation / mmengine glue: vitadapter's classes in their registries, and the config
preparation its tools share. Importing this package needs mmsegmentation; ``import vitadapter``
does it when mmseg is present.

What the import changes in the process, and nothing else:

* registers in mmseg's registries the backbones (``ViTPyramid``, ``ViTAdapter``, ``DINOv3Adapter``),
  the segmentors ``ViTEncoderDecoder`` and ``EoMTSegmentor`` (EoMT, PMT), the heads (``FastUPerHead``, ``LinearProbeHead``,
  ``TorchMask2FormerHead``), the data sets (``CamVidDataset``, ``ShapesDataset``), the layer-decay
  optimizer constructor, the CPU mixed-precision optimizer wrapper and EoMT's
  ``TwoStageWarmupPolyLR``; in mmengine's, the FSDP wrapper and strategy, the
  ``SafeCheckpointsHook``, EoMT's ``MaskAnnealingHook`` and the ``CPUSyncBN`` norm; and, where mmdet
  works, the backbones, ``LastLevelMaxPool``, ``LN2d`` and the optimizer pieces in mmdet's;
* adds ``'CPUSyncBN'`` to vitadapter's own norm types (:func:`vitadapter.layers.register_norm`).

Checkpoint safety (torch's ``weights_only`` allowlist, a ``copyreg`` entry) is installed by a
runner hook, not by the import (:mod:`.training.checkpoint_safety`).

* :mod:`.registry`: the backbones in mmseg's and mmdet's ``MODELS``;
* :mod:`.models`: the segmentor, the heads, the channel lookup, the export wrapper;
* :mod:`.training`: optimizer constructor, mixed precision, synchronised BN, FSDP, safe checkpoints;
* :mod:`.datasets`: CamVid and the generated shapes set;
* :mod:`.config` / :mod:`.cli`: config preparation and the command line of tools/train.py, test.py;
* :mod:`.detection`: what detection configs import (checks that mmdet can run here).
"""
from ..data import make_shapes_dataset
from .cli import parse_runner_args, runner_argument_parser
from .config import finish_distributed, load_config, prepare_config
from .datasets import CamVidDataset, ShapesDataset
from .models.channels import resolve_head_channels
from .models.eomt_segmentor import EoMTSegmentor
from .models.heads import FastUPerHead, LinearProbeHead
from .models.mask2former import TorchMask2FormerHead
from .models.segmentor import ViTEncoderDecoder, check_auto_resolved
from .registry import register_all
from .training.amp import CPUAmpOptimWrapper
from .training.checkpoint_safety import SafeCheckpointsHook, allow_mmengine_checkpoint_globals
from .training.eomt_schedules import MaskAnnealingHook, TwoStageWarmupPolyLR
from .training.fsdp import TrunkBlockFSDP, TrunkFSDPStrategy
from .training.optimizer import ViTLayerDecayOptimizerConstructor
from .training.sync_bn import CPUSyncBatchNorm

register_all()

__all__ = ['register_all', 'load_config', 'prepare_config', 'runner_argument_parser', 'parse_runner_args',
           'finish_distributed', 'resolve_head_channels', 'check_auto_resolved', 'ViTEncoderDecoder',
           'CamVidDataset', 'ShapesDataset', 'make_shapes_dataset', 'CPUSyncBatchNorm',
           'CPUAmpOptimWrapper', 'TrunkBlockFSDP', 'TrunkFSDPStrategy', 'LinearProbeHead',
           'FastUPerHead', 'TorchMask2FormerHead', 'ViTLayerDecayOptimizerConstructor',
           'SafeCheckpointsHook', 'allow_mmengine_checkpoint_globals', 'EoMTSegmentor',
           'MaskAnnealingHook', 'TwoStageWarmupPolyLR']
