"""mmsegmentation / mmengine glue: vitadapter's classes in their registries.

Importing this package needs mmsegmentation; ``import vitadapter`` does it when mmseg is present.
"""
from .amp import CPUAmpOptimWrapper  # registers itself
from .checkpoint_safety import allow_mmengine_checkpoint_globals
from .datasets import CamVidDataset  # registers itself
from .demo_data import ShapesDataset, make_shapes_dataset  # registers itself
from .heads import FastUPerHead, LinearProbeHead  # registers themselves
from .optimizer import ViTLayerDecayOptimizerConstructor  # registers itself
from .registry import register_all
from .sync_bn import CPUSyncBatchNorm  # registers 'CPUSyncBN'
from .runtime import (finish_distributed, load_config, parse_runner_args, prepare_config,
                      resolve_head_channels, runner_argument_parser)

register_all()

__all__ = ['register_all', 'load_config', 'prepare_config', 'runner_argument_parser', 'parse_runner_args', 'finish_distributed', 'resolve_head_channels', 'CamVidDataset', 'ShapesDataset',
           'make_shapes_dataset', 'CPUSyncBatchNorm', 'CPUAmpOptimWrapper', 'LinearProbeHead', 'FastUPerHead',
           'ViTLayerDecayOptimizerConstructor', 'allow_mmengine_checkpoint_globals']
