"""mmsegmentation / mmengine glue: vitadapter's classes in their registries.

Importing this package needs mmsegmentation; ``import vitadapter`` does it when mmseg is present.
"""
from .quiet_import import muted_stub_notices

with muted_stub_notices():  # the onedl fork prints a notice when mmseg.datasets is imported
    from .amp import CPUAmpOptimWrapper  # registers itself
    from .checkpoint_safety import allow_mmengine_checkpoint_globals
    from .datasets import CamVidDataset  # registers itself
    from .demo_data import ShapesDataset, make_shapes_dataset  # registers itself
    from .fsdp import TrunkBlockFSDP, TrunkFSDPStrategy  # register themselves
    from .heads import FastUPerHead, LinearProbeHead  # registers themselves
    from .mask2former import TorchMask2FormerHead  # registers itself
    from .optimizer import ViTLayerDecayOptimizerConstructor  # registers itself
    from .registry import register_all
    from .sync_bn import CPUSyncBatchNorm  # registers 'CPUSyncBN'
    from .channels import resolve_head_channels
    from .runtime import (finish_distributed, load_config, parse_runner_args, prepare_config,
                          runner_argument_parser)
    from .segmentor import ViTEncoderDecoder, check_auto_resolved  # registers itself

register_all()
allow_mmengine_checkpoint_globals()  # weights_only-safe mmengine checkpoints, under any tool

__all__ = ['register_all', 'load_config', 'prepare_config', 'runner_argument_parser', 'parse_runner_args', 'finish_distributed', 'resolve_head_channels', 'check_auto_resolved', 'ViTEncoderDecoder', 'CamVidDataset', 'ShapesDataset',
           'make_shapes_dataset', 'CPUSyncBatchNorm', 'CPUAmpOptimWrapper', 'TrunkBlockFSDP', 'TrunkFSDPStrategy', 'LinearProbeHead', 'FastUPerHead', 'TorchMask2FormerHead',
           'ViTLayerDecayOptimizerConstructor', 'allow_mmengine_checkpoint_globals']
