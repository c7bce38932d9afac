"""Every config in configs/ loads, builds its model and runs one training step on random data.

Configs are built the way mmseg's stock tools build them (``Config.fromfile``, whose
``custom_imports`` imports vitadapter, then ``MODELS.build``): no vitadapter pre-processing.

The data sets are absent here and weights cannot be downloaded, so each config is run at a small
size: 64x64 crops, random images and labels, no pretrained weights, and vitadapter trunks cut to
4 blocks (model name, width, patch, prefix tokens and every other setting kept as configured).
"""
import glob
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS, init_default_scope
from mmseg.registry import MODELS

from vitadapter.models import MaskAnnealing

from test_mmseg_integration import fake_batch

from conftest import ROOT

DETECTION = os.path.join(ROOT, 'configs', 'vitdet')  # mmdet configs: tests/test_detection.py
CONFIGS = sorted(p for p in glob.glob(os.path.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p and not p.startswith(DETECTION + os.sep))
SIZE = (64, 64)


def shrink(cfg: Config) -> Config:
    cfg.model.data_preprocessor.size = SIZE
    if cfg.model.type == 'EoMTSegmentor':  # no backbone: the network's trunk, 4 blocks of width 64
        network = cfg.model.network
        network.update(img_size=SIZE[0], depth=4, embed_dim=64, num_heads=2, pretrained=False)
        if network.type == 'EoMT':
            network.num_blocks = min(network.num_blocks, 4)
        else:
            network.update(trunk_layers=None, decoder_mlp_dim=None)
        if cfg.model.get('test_cfg', {}).get('mode') == 'slide':
            cfg.model.test_cfg.update(crop_size=SIZE, stride=(48, 48))
        return cfg
    backbone = cfg.model.backbone
    if backbone.type == 'ViTPyramid':
        backbone.update(depth=4, img_size=SIZE[0], pretrained=False)
        if isinstance(backbone.get('out_indices'), (list, tuple)):
            backbone.out_indices = list(range(4))[-len(backbone.out_indices):]
    elif backbone.type == 'ViTAdapter':  # 4 blocks, one per interaction
        backbone.update(img_size=SIZE[0], depth=4, interaction_indexes=None, pretrained=False)
    elif backbone.type == 'DINOv3Adapter':  # 4 blocks, the default trunk_layers: 4 of 4 blocks
        backbone.update(img_size=SIZE[0], depth=4, trunk_layers=None, pretrained=False)
    if cfg.model.get('test_cfg', {}).get('mode') == 'slide':
        cfg.model.test_cfg.update(crop_size=SIZE, stride=(48, 48))
    return cfg


def num_classes(cfg):
    if cfg.model.type == 'EoMTSegmentor':
        return cfg.model.network.num_classes
    head = cfg.model.decode_head
    return (head[0] if isinstance(head, list) else head).num_classes


def test_every_config_is_listed():
    names = {os.path.relpath(p, os.path.join(ROOT, 'configs')) for p in CONFIGS}
    assert len(names) >= 13
    for required in ('vitpyramid/upernet_vit-s16-augreg_160k_ade20k-512x512.py',
                     'vitpyramid/upernet_vit-b16-deit_160k_ade20k-512x512.py',
                     'vitpyramid/upernet_vit-s14-dinov2-reg_160k_ade20k-512x512.py',
                     'vitpyramid/upernet_vit-b14-dinov2-reg_160k_ade20k-512x512.py',
                     'vitpyramid/upernet_eva02-b14_160k_ade20k-512x512.py',
                     'vitpyramid/fpn_vit-b16-deit_80k_ade20k-512x512.py',
                     'vitpyramid/linear_vit-s14-dinov2-reg-frozen_40k_ade20k-512x512.py',
                     'vitpyramid/upernet_vit-b16-deit_80k_cityscapes-512x1024.py',
                     'vitpyramid/upernet_vit-b16-deit_40k_voc12aug-512x512.py',
                     'vitpyramid/upernet_vit-t16-scratch_1000it_camvid-176x176.py',
                     'vitpyramid/linear_vit-s16-dinov3-frozen_40k_ade20k-512x512.py',
                     'vitpyramid/linear_vit-s16-dinov3-frozen-last4_40k_ade20k-512x512.py',
                     'vitpyramid/upernet_vit-s16-dinov3_160k_ade20k-512x512.py',
                     'vitpyramid/upernet_vit-b16-dinov3_160k_ade20k-512x512.py',
                     'mask2former/mask2former_vit-s16-augreg_160k_ade20k-512x512.py',
                     'mask2former/mask2former_vit-adapter-s-deit_160k_ade20k-512x512.py',
                     'mask2former/mask2former_vit-s16-dinov3_160k_ade20k-512x512.py',
                     'mask2former/mask2former_vit-b16-dinov3_160k_ade20k-512x512.py',
                     'mask2former/mask2former_vit-adapter-s16-dinov3-frozen-extractors_40k_ade20k-512x512.py',
                     'mask2former/mask2former_vit-t16-scratch_1000it_camvid-176x176.py',
                     'demo/upernet_vit-t16_400it_shapes-96x96.py'):
        assert required in names


def train_step(cfg: Config):
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    for scheduler in cfg.get('param_scheduler') or []:  # they build on the constructor's groups
        PARAM_SCHEDULERS.build(scheduler, default_args=dict(
            optimizer=build_optim_wrapper(model, cfg.optim_wrapper), epoch_length=1))
    annealing = [h for h in cfg.get('custom_hooks', []) if h['type'] == 'MaskAnnealingHook']
    if annealing:  # what the hook does before a step: mid-way through the first window
        hook = annealing[0]
        schedule = MaskAnnealing(hook['starts'], hook['ends'], hook.get('power', 0.9), cfg.train_cfg.max_iters)
        iteration = (hook['starts'][0] + hook['ends'][0]) // 2
        model.set_iteration(iteration, schedule.probabilities(iteration))
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    losses = model.train_step(fake_batch(2, SIZE, num_classes(cfg)), optim_wrapper)
    assert all(torch.isfinite(v) for k, v in losses.items() if 'loss' in k)
    changed = [n for n, p in model.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert changed, 'no parameter changed after one step'
    return model, changed


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: os.path.relpath(p, os.path.join(ROOT, 'configs')))
def test_config_builds_and_trains_one_step(path):
    cfg = shrink(Config.fromfile(path))
    assert 'vitadapter' in cfg.custom_imports['imports']
    model, changed = train_step(cfg)
    if cfg.model.get('backbone', {}).get('freeze_trunk'):
        assert not any(n.startswith('backbone.trunk.') for n in changed)
    elif cfg.model.type == 'EoMTSegmentor':
        assert any(n.startswith('network.head.') for n in changed)
        if cfg.model.network.type == 'PMT':  # the frozen trunk never changes
            assert not any(n.startswith('network.trunk.') for n in changed)
    elif cfg.model.backbone.type in ('ViTPyramid', 'ViTAdapter', 'DINOv3Adapter'):
        assert any(n.startswith('backbone.') for n in changed)


@pytest.mark.parametrize('model_name', ['vit_small_patch14_reg4_dinov2', 'eva02_small_patch14_224',
                                        'vit_base_patch16_siglip_224', 'deit3_small_patch16_224'])
def test_backbone_swap_is_one_line(model_name):
    """Changing model_name, and nothing else, gives a config that builds and trains."""
    path = os.path.join(ROOT, 'configs', 'vitpyramid', 'upernet_vit-b16-deit_160k_ade20k-512x512.py')
    cfg = shrink(Config.fromfile(path))
    cfg.model.backbone.model_name = model_name
    model, _ = train_step(cfg)
    assert model.decode_head.in_channels == model.backbone.feature_info.channels()
