"""The ``uper-``, ``m2f-`` and ``eomt-segmentor`` variants: the ADE20K models of the base model
configs (configs/_base_/models: UperNet + FCN auxiliary head, Mask2Former, EoMT; 150 classes) on
the benchmark's trunk (``--model``, or the config's), with no weights and stochastic depth off."""
import argparse
import copy
import os
from functools import lru_cache
from typing import Tuple

from .catalogue import BASE_SEGMENTORS
from .vit import TIMM_KWARGS, TrunkSpec, trunk_spec

BASE_MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                               'configs', '_base_', 'models')


@lru_cache(maxsize=None)
def _base_model(path: str):
    from mmengine.config import Config
    return Config.fromfile(path).model


def base_model(variant: str):
    """A copy of the model of ``variant``'s base config (a ConfigDict: mmseg reads test_cfg.mode)."""
    return copy.deepcopy(_base_model(os.path.join(BASE_MODELS_DIR, BASE_SEGMENTORS[variant])))


def eomt_network_cfg(spec: TrunkSpec, size: Tuple[int, int], grad_checkpointing: bool) -> dict:
    """The network of configs/_base_/models/eomt_vit.py on the trunk of ``spec``: its model and
    timm options, no weights, ``img_size`` = ``size``, stochastic depth off. The base config's
    ``patch_size=16`` (DINOv2 re-patched) is dropped: the trunk keeps its own patch, as in every
    variant (a config's own ``patch_size`` is part of ``spec``)."""
    network = dict(base_model('eomt-segmentor')['network'])
    network.pop('patch_size', None)
    network.update(model_name=spec.model_name, pretrained=False, img_size=tuple(size), drop_path_rate=0.0,
                   **{k: v for k, v in spec.kwargs.items() if k in TIMM_KWARGS})
    if grad_checkpointing:
        network['grad_checkpointing'] = True
    return network


def base_segmentor_cfg(args: argparse.Namespace, variant: str, size: Tuple[int, int]) -> dict:
    """``variant``'s base model on the trunk: ViTPyramid's blocks are the trunk's (its default, 4
    evenly spaced blocks ending with the last, or the config's); EoMT inference runs whole images
    (mmseg's ``whole`` mode, as UperNet's and Mask2Former's: the base config's ``slide`` at its
    512 crop is one window at 512x512, the same work); batches padded to ``size``."""
    spec = trunk_spec(args)
    model = base_model(variant)
    model.setdefault('data_preprocessor', {})['size'] = tuple(size)
    if variant == 'eomt-segmentor':
        model['network'] = eomt_network_cfg(spec, size, args.grad_checkpointing)
        model['test_cfg'] = dict(mode='whole')
        return model
    backbone = model['backbone']
    backbone.pop('out_indices', None)
    backbone.update(model_name=spec.model_name, pretrained=False, img_size=tuple(size), drop_path_rate=0.0,
                    **spec.kwargs)
    if spec.out_indices is not None:
        backbone['out_indices'] = spec.out_indices
    if args.grad_checkpointing:
        backbone['grad_checkpointing'] = True
    return model
