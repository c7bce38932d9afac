"""A setting made ready to time: its model built on the device (compiled if asked) and the
function running one call of it."""
import argparse
from typing import Callable, NamedTuple, Tuple

import torch
import torch.nn as nn

from .backbone_variants import build_backbone_variant
from .catalogue import is_segmentor
from .eomt import set_mask_probabilities
from .mmseg_baselines import build_mmseg
from .segmentors import segmentor_batch, segmentor_cfg
from .settings import Setting
from .steps import backbone_step, segmentor_step


class Case(NamedTuple):
    """A built variant ready to time: the model, one call, and what it is."""
    model: nn.Module
    step: Callable[[], None]
    params: int
    trainable: int


def compile_in_place(model: nn.Module, variant: str) -> None:
    """``torch.compile`` the model, or a segmentor's backbone, neck and heads (EoMTSegmentor: its
    network; the segmentor's own code, data preprocessing and losses stay eager)."""
    if not is_segmentor(variant):
        model.compile()
        return
    for name in ('backbone', 'neck', 'decode_head', 'auxiliary_head', 'network'):
        part = getattr(model, name, None)
        if isinstance(part, nn.ModuleList):
            for head in part:
                head.compile()
        elif isinstance(part, nn.Module):
            part.compile()


def build_case(args: argparse.Namespace, setting: Setting, size: Tuple[int, int],
               compile_model: bool = True) -> Case:
    """Build the model of ``setting`` on the device and the function running one call of it
    (an EoMT's mask probabilities set for the mode: :func:`.eomt.set_mask_probabilities`)."""
    device = torch.device(args.device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    if is_segmentor(setting.variant):
        cfg = segmentor_cfg(args, setting.variant, size)
        model = build_mmseg(cfg).to(device, memory_format=memory_format)
        data = segmentor_batch(cfg, args.batch, size, getattr(args, 'label_classes', None))
        step = segmentor_step(model, data, args.mode, setting.dtype, args.segmentor_forward, device)
    else:
        model = build_backbone_variant(args, setting.variant, size).to(device, memory_format=memory_format)
        x = torch.randn(args.batch, 3, *size, device=device).contiguous(memory_format=memory_format)
        step = backbone_step(model, x, args.mode, setting.dtype)
    set_mask_probabilities(model, args)
    if setting.compiled and compile_model:
        compile_in_place(model, setting.variant)
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Case(model, step, params, trainable)
