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
        if any(size in backbone.model_name for size in ('large', 'giant')):  # the width proves nothing
            backbone.update(embed_dim=384, num_heads=6)
        if isinstance(backbone.get('out_indices'), (list, tuple)):
            backbone.out_indices = list(range(4))[-len(backbone.out_indices):]
    elif backbone.type == 'ViTAdapter':  # 4 blocks, one per interaction
        backbone.update(img_size=SIZE[0], depth=4, interaction_indexes=None, pretrained=False)
    elif backbone.type == 'DINOv3Adapter':  # 4 blocks, the default trunk_layers: 4 of 4 blocks
        backbone.update(img_size=SIZE[0], depth=4, trunk_layers=None, pretrained=False)
    head = cfg.model.get('decode_head')
    if isinstance(head, dict) and head.get('type') in ('UPerHead', 'FastUPerHead') and head.channels > 512:
        head.channels = 256  # the L/g configs' 1024: a 37M-parameter fusion conv that proves nothing here
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
    for required in ('vitpyramid/upernet_vit-s16-augreg_8xb2-160k_ade20k-512x512.py',
                     'vitpyramid/upernet_vit-b16-deit_8xb2-160k_ade20k-512x512.py',
                     'vitpyramid/upernet_vit-s14-dinov2-reg_8xb2-160k_ade20k-512x512.py',
                     'vitpyramid/upernet_vit-b14-dinov2-reg_8xb2-160k_ade20k-512x512.py',
                     'vitpyramid/upernet_eva02-b14_8xb2-160k_ade20k-512x512.py',
                     'vitpyramid/fpn_vit-b16-deit_4xb4-80k_ade20k-512x512.py',
                     'vitpyramid/linear_vit-s14-dinov2-reg-frozen_2xb8-40k_ade20k-512x512.py',
                     'vitpyramid/upernet_vit-b16-deit_4xb2-80k_cityscapes-512x1024.py',
                     'vitpyramid/upernet_vit-b16-deit_4xb4-40k_voc12aug-512x512.py',
                     'vitpyramid/upernet_vit-t16-scratch_1xb8-1000it_camvid-176x176.py',
                     'vitpyramid/linear_vit-s16-dinov3-frozen_8xb2-40k_ade20k-512x512.py',
                     'vitpyramid/linear_vit-s16-dinov3-frozen-last4_8xb2-40k_ade20k-512x512.py',
                     'vitpyramid/upernet_vit-s16-dinov3_8xb2-160k_ade20k-512x512.py',
                     'vitpyramid/upernet_vit-b16-dinov3_8xb2-160k_ade20k-512x512.py',
                     'mask2former/mask2former_vit-s16-augreg_8xb2-160k_ade20k-512x512.py',
                     'mask2former/mask2former_vit-adapter-s-deit_8xb2-160k_ade20k-512x512.py',
                     'mask2former/mask2former_vit-s16-dinov3_8xb2-160k_ade20k-512x512.py',
                     'mask2former/mask2former_vit-b16-dinov3_8xb2-160k_ade20k-512x512.py',
                     'mask2former/mask2former_vit-adapter-s16-dinov3-frozen-extractors_8xb2-40k_ade20k-512x512.py',
                     'mask2former/mask2former_vit-t16-scratch_1xb8-1000it_camvid-176x176.py',
                     'demo/upernet_vit-t16_1xb8-400it_shapes-96x96.py'):
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
    path = os.path.join(ROOT, 'configs', 'vitpyramid', 'upernet_vit-b16-deit_8xb2-160k_ade20k-512x512.py')
    cfg = shrink(Config.fromfile(path))
    cfg.model.backbone.model_name = model_name
    model, _ = train_step(cfg)
    assert model.decode_head.in_channels == model.backbone.feature_info.channels()


HELD_OUT = sorted(p for p in CONFIGS if 'camvid-heldout-0001TP' in p)


def fake_camvid(root, frames):
    """A CamVid-shaped folder: one 8x8 image and label per (split, frame name)."""
    import numpy as np
    from PIL import Image
    for split, name in frames:
        for kind, mode in (('img_dir', 'RGB'), ('ann_dir', 'L')):
            folder = root / kind / split
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((8, 8, 3) if mode == 'RGB' else (8, 8), np.uint8), mode).save(folder / name)


def test_every_camvid_config_has_its_held_out_twin():
    """Each CamVid recipe of a model folder is also scored on the held-out sequence."""
    camvid = [p for p in CONFIGS if p.endswith('_1xb8-1000it_camvid-176x176.py') and 'frozen' not in p]
    assert len(HELD_OUT) == 5 and {os.path.dirname(p) for p in HELD_OUT} == {os.path.dirname(p) for p in camvid}
    for path in HELD_OUT:
        assert path.replace('camvid-heldout-0001TP-', 'camvid-') in camvid


@pytest.mark.parametrize('path', HELD_OUT, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_held_out_configs_train_and_score_on_disjoint_sequences(path, tmp_path):
    """Built as mmseg's tools build them, on a folder laid out like CamVid: training sees frames of
    0006R0 and 0016E5 only (train split), validation and test the train split's 0001TP frames."""
    from mmseg.registry import DATASETS
    frames = [('train', f'{seq}_{i:05d}.png') for seq, n in (('0001TP', 3), ('0006R0', 2), ('0016E5', 4))
              for i in range(n)] + [('val', f'0016E5_{i:05d}.png') for i in range(5)]
    fake_camvid(tmp_path, frames)
    cfg = Config.fromfile(path)
    init_default_scope('mmseg')
    sets = {}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        spec = cfg[loader].dataset.copy()
        spec.data_root = str(tmp_path)
        sets[loader] = [os.path.basename(d['img_path']) for d in DATASETS.build(spec).load_data_list()]
    assert len(sets['train_dataloader']) == 6 and {n[:6] for n in sets['train_dataloader']} == {'0006R0', '0016E5'}
    assert sets['val_dataloader'] == sets['test_dataloader'] == [f'0001TP_{i:05d}.png' for i in range(3)]


def test_a_sequence_the_folder_does_not_hold_is_named(tmp_path):
    from vitadapter.engine.datasets import CamVidDataset
    fake_camvid(tmp_path, [('train', '0016E5_00001.png')])
    with pytest.raises(ValueError, match=r"no frame of the sequences \['0001TP'\] in .*img_dir/train, "
                                         r"which holds \['0016E5'\]"):
        CamVidDataset(data_root=str(tmp_path), sequences=['0001TP'],
                      data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'), pipeline=[])
