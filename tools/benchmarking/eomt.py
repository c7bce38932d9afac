"""EoMT in the benchmark: the ``eomt`` variant (EoMT with ADE20K's settings of
configs/_base_/models/eomt_vit.py, 150 classes, 100 queries in the last 4 blocks, on the trunk)
and the mask probabilities every EoMT runs with, variant or segmentor: 0 in forward mode (annealing
done, as in a trained model: no mask, one prediction), ``--eomt-mask-prob`` (default 1: every
query masked, the most expensive case) in training steps."""
import argparse
from typing import Tuple

import torch
import torch.nn as nn

from .vit import TIMM_KWARGS, TrunkSpec, trunk_spec

DEFAULT_TRAIN_MASK_PROBABILITY = 1.0


class SemanticEoMT(nn.Module):
    """The ``eomt`` variant: in eval, ``semantic_segmentation`` (images (B, 3, H, W) -> per-class
    scores (B, K, H, W): class and mask logits met at stride 4, then resized); in training, every
    prediction (:class:`~vitadapter.models.MaskPredictions`)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor):
        return self.network(x) if self.training else [self.network.semantic_segmentation(x)]


def eomt_network_cfg(spec: TrunkSpec, size: Tuple[int, int], grad_checkpointing: bool) -> dict:
    """The network of configs/_base_/models/eomt_vit.py on the trunk of ``spec``: its model and
    timm options, no weights, ``img_size`` = ``size``, stochastic depth off. The base config's
    ``patch_size=16`` (DINOv2 re-patched) is dropped: the trunk keeps its own patch, as in every
    variant (a config's own ``patch_size`` is part of ``spec``)."""
    from .base_models import base_model
    network = dict(base_model('eomt-segmentor')['network'])
    network.pop('patch_size', None)
    network.update(model_name=spec.model_name, pretrained=False, img_size=tuple(size), drop_path_rate=0.0,
                   **{k: v for k, v in spec.kwargs.items() if k in TIMM_KWARGS})
    if grad_checkpointing:
        network['grad_checkpointing'] = True
    return network


def build_eomt(args: argparse.Namespace, size: Tuple[int, int]) -> nn.Module:
    """The ``eomt`` variant on the benchmark's trunk (``--model``, or the config's)."""
    from vitadapter.models import EoMT
    cfg = eomt_network_cfg(trunk_spec(args), size, args.grad_checkpointing)
    if cfg.pop('type', 'EoMT') != 'EoMT':
        raise ValueError("configs/_base_/models/eomt_vit.py's network is no longer an EoMT")
    return SemanticEoMT(EoMT(**cfg))


def set_mask_probabilities(model: nn.Module, args: argparse.Namespace) -> None:
    """Every EoMT / PMT in ``model``: probabilities 0 in forward mode; ``--eomt-mask-prob`` for
    every masked block in train mode, and an EoMTSegmentor told its iteration (0), as the configs'
    ``MaskAnnealingHook`` does before every step of a run (it refuses to train otherwise)."""
    from vitadapter.models import MaskTransformer
    train = args.mode == 'train'
    probability = getattr(args, 'eomt_mask_prob', DEFAULT_TRAIN_MASK_PROBABILITY) if train else 0.0
    for module in model.modules():
        if isinstance(module, MaskTransformer):
            module.set_mask_probabilities([probability] * module.num_blocks)
    network = getattr(model, 'network', None)
    if train and hasattr(model, 'set_iteration') and isinstance(network, MaskTransformer):
        model.set_iteration(0, network.attn_mask_probs.tolist())
