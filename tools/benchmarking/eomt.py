"""EoMT in the benchmark: the ``eomt`` variant (EoMT with ADE20K's settings of
configs/_base_/models/eomt_vit.py, 150 classes, 100 queries in the last 4 blocks, on the trunk)
and the mask probabilities every EoMT runs with, variant or segmentor: 0 in forward mode (annealing
done, as in a trained model: no mask, one prediction), ``--eomt-mask-prob`` (default 1: every
query masked, the most expensive case) in training steps."""
import argparse
from typing import Tuple

import torch
import torch.nn as nn

from .base_models import eomt_network_cfg
from .vit import trunk_spec

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
