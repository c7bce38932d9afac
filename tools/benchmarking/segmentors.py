"""The segmentor variants' configs (the config's model, with mmseg's stock heads, or with its
backbone replaced; the base configs' ADE20K models on the trunk) and a random batch as mmseg's
dataloader gives it."""
import argparse
import copy
from typing import List, Optional, Tuple

import torch

from .base_models import base_segmentor_cfg
from .catalogue import BASE_SEGMENTORS
from .config import load_config
from .mmseg_baselines import mmseg_neck_cfg, mmseg_vit_cfg
from .vit import adapter_kwargs, trunk_spec, vit_geometry

# vitadapter's heads -> the mmseg heads computing the same function (for the native baselines)
STOCK_HEADS = {'FastUPerHead': 'UPerHead'}


def heads_of(model_cfg: dict) -> List[dict]:
    """The decode and auxiliary head configs (lists of heads flattened)."""
    heads = []
    for key in ('decode_head', 'auxiliary_head'):
        head = model_cfg.get(key)
        heads += list(head) if isinstance(head, (list, tuple)) else ([head] if head else [])
    return heads


def set_head_channels(model_cfg: dict, channels: int) -> None:
    """Every head reads levels of ``channels`` channels: in_channels follows in_index's form."""
    for head in heads_of(model_cfg):
        in_index = head.get('in_index', -1)
        head['in_channels'] = [channels] * len(in_index) if isinstance(in_index, (list, tuple)) else channels


# options of vitadapter's heads that the stock heads do not take (they choose how, not what)
HEAD_ONLY_OPTIONS = {'FastUPerHead': ('fast_path',)}


def use_stock_heads(model_cfg: dict) -> None:
    """Replace vitadapter's heads by the mmseg heads they equal (``STOCK_HEADS``), dropping the
    options only vitadapter's take (e.g. ``--cfg-options model.decode_head.fast_path=True``)."""
    for head in heads_of(model_cfg):
        for option in HEAD_ONLY_OPTIONS.get(head['type'], ()):
            head.pop(option, None)
        head['type'] = STOCK_HEADS.get(head['type'], head['type'])


def segmentor_cfg(args: argparse.Namespace, variant: str, size: Tuple[int, int]) -> dict:
    """The config's model for ``variant`` (or its base config's), at input ``size``, stochastic
    depth off."""
    if variant in BASE_SEGMENTORS:
        return base_segmentor_cfg(args, variant, size)
    model = copy.deepcopy(load_config(args).model)  # a ConfigDict: mmseg reads test_cfg.mode
    model.setdefault('data_preprocessor', {})['size'] = tuple(size)
    if variant.startswith(('stock-head', 'mmseg-')):
        use_stock_heads(model)
    if variant in ('segmentor', 'stock-head-segmentor'):
        # an EoMTSegmentor config has a network (EoMT / PMT), no backbone
        vit = model['network'] if 'network' in model else model['backbone']
        vit.update(drop_path_rate=0.0, img_size=tuple(size))
        if 'network' in model:
            vit.update(pretrained=False, checkpoint=None)  # timing needs no weights
        if args.grad_checkpointing:
            vit['grad_checkpointing'] = True
        return model
    if model.get('neck'):
        raise ValueError(f"{variant!r} replaces the backbone and adds a neck, but the config "
                         f"already has a neck ({model['neck'].get('type')}); use a config whose "
                         f"heads read the backbone (UperNet)")
    spec = trunk_spec(args)
    geometry = vit_geometry(spec)
    if variant == 'adapter-segmentor':
        model['backbone'] = dict(type='ViTAdapter', **adapter_kwargs(spec, size, variant),
                                 grad_checkpointing=args.grad_checkpointing)
    else:  # mmseg-f2p-segmentor / mmseg-mln-segmentor
        model['backbone'] = mmseg_vit_cfg(geometry, size, args.grad_checkpointing)
        model['neck'] = mmseg_neck_cfg(variant.split('-')[1], geometry['embed_dims'])
    set_head_channels(model, geometry['embed_dims'])
    return model


def num_classes_of(model_cfg: dict) -> int:
    if 'network' in model_cfg:  # EoMTSegmentor
        return int(model_cfg['network']['num_classes'])
    decode = model_cfg['decode_head']
    return int((decode[0] if isinstance(decode, (list, tuple)) else decode)['num_classes'])


def segmentor_batch(model_cfg: dict, batch: int, size: Tuple[int, int],
                    label_classes: Optional[int] = None) -> dict:
    """A batch as mmseg's dataloader gives it: uint8 images and random labels, every pixel's drawn
    from every class, or (``label_classes``) from that many classes drawn for each image (the
    mask losses match the queries to one target mask per class present)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    h, w = size
    classes = num_classes_of(model_cfg)
    samples = []
    for _ in range(batch):
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        if label_classes is None:
            labels = torch.randint(0, classes, (1, h, w))
        else:
            chosen = torch.randperm(classes)[:min(label_classes, classes)]
            labels = chosen[torch.randint(0, len(chosen), (1, h, w))]
        sample.gt_sem_seg = PixelData(data=labels)
        samples.append(sample)
    inputs = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for _ in range(batch)]
    return dict(inputs=inputs, data_samples=samples)
