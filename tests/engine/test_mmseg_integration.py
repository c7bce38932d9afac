"""ViTPyramid inside mmsegmentation: registry, config files with custom_imports, a segmentor."""
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmengine.structures import PixelData

import vitadapter

from conftest import tiny, ROOT

BASE_MODEL_CONFIG = os.path.join(ROOT, 'configs', '_base_', 'models', 'upernet_vitpyramid.py')


def test_registered_in_mmseg_scope():
    init_default_scope('mmseg')
    backbone = MODELS.build(dict(type='ViTPyramid', **tiny('vit')))
    assert isinstance(backbone, vitadapter.ViTPyramid)
    assert MODELS.get('ViTPyramid') is vitadapter.ViTPyramid


def test_custom_imports_in_a_fresh_process(tmp_path):
    """What mmseg's tools do: read a config whose custom_imports names vitadapter, then build."""
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(
        "custom_imports = dict(imports=['vitadapter'], allow_failed_imports=False)\n"
        f"model = dict(type='ViTPyramid', model_name='vit_base_patch16_224', img_size=64, depth=2,"
        f" embed_dim=32, num_heads=2, out_indices=(-1,), pyramid='simple', out_channels=8)\n")
    code = (
        "import sys\n"
        "from mmengine.config import Config\n"
        "from mmengine.registry import init_default_scope\n"
        f"cfg = Config.fromfile({str(cfg_file)!r})\n"
        "assert 'vitadapter' in sys.modules\n"
        "init_default_scope('mmseg')\n"
        "from mmseg.registry import MODELS\n"
        "m = MODELS.build(cfg.model)\n"
        "print(m.feature_info.channels(), m.feature_info.reduction())\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == '[8, 8, 8, 8] [4, 8, 16, 32]'


def tiny_segmentor_cfg(family='vit', **backbone):
    cfg = Config.fromfile(BASE_MODEL_CONFIG)
    cfg.model.backbone.update(tiny(family, **backbone))
    cfg.model.backbone.out_indices = (0, 1, 2, 3)
    cfg.model.data_preprocessor.size = (64, 96)
    cfg.model.decode_head.update(in_channels=[16, 32, 64, 64], channels=32, num_classes=5)
    cfg.model.auxiliary_head.update(in_channels=64, channels=16, num_classes=5)
    return cfg


def fake_batch(n=2, size=(64, 96), num_classes=5):
    inputs = [torch.randint(0, 256, (3, *size), dtype=torch.uint8) for _ in range(n)]
    samples = []
    for _ in range(n):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, *size)))
        s.set_metainfo(dict(img_shape=size, ori_shape=size, pad_shape=size))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('family', ['vit', 'dinov2_reg'])
def test_encoder_decoder_upernet_forward_backward(family):
    init_default_scope('mmseg')
    cfg = tiny_segmentor_cfg(family)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    data = model.data_preprocessor(fake_batch(), training=True)
    losses = model(**data, mode='loss')
    assert {'decode.loss_ce', 'aux.loss_ce'} <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    trunk_grad = model.backbone.trunk.model.patch_embed.proj.weight.grad
    assert trunk_grad is not None and trunk_grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(fake_batch(1, (50, 70)), training=False), mode='predict')
    assert preds[0].pred_sem_seg.data.shape == (1, 50, 70)


def test_init_weights_keeps_loaded_trunk_weights(tmp_path):
    """mmengine's init_weights must not re-initialise a trunk that loaded a checkpoint."""
    donor = vitadapter.ViTPyramid(**tiny('vit'))
    torch.save(donor.trunk.model.state_dict(), tmp_path / 'w.pth')
    init_default_scope('mmseg')
    cfg = tiny_segmentor_cfg('vit', checkpoint=str(tmp_path / 'w.pth'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    for k, v in donor.trunk.model.state_dict().items():
        assert torch.equal(model.backbone.trunk.model.state_dict()[k], v), k


@pytest.mark.parametrize('norm_cfg', [dict(type='BN'), dict(type='GN', num_groups=8), None])
def test_neck_norm_layers_are_configurable(norm_cfg):
    model = vitadapter.ViTPyramid(**tiny('vit'), pyramid='simple', out_channels=16, norm_cfg=norm_cfg)
    kinds = {type(m).__name__ for m in model.neck.modules()}
    norms = {'BatchNorm2d', 'GroupNorm', 'LayerNorm2d'}
    convs = [m for m in model.neck.modules() if type(m) is torch.nn.Conv2d]
    if norm_cfg is None:  # no norm layer at all, and the output convolutions get their biases back
        assert not kinds & norms and convs and all(c.bias is not None for c in convs)
    else:
        expected = {'BN': 'BatchNorm2d', 'GN': 'GroupNorm'}[norm_cfg['type']]
        assert kinds & norms == {expected} and all(c.bias is None for c in convs)
    model.train()
    levels = model(torch.randn(2, 3, 64, 64))
    assert [y.shape[1] for y in levels] == [16] * 4


def run_demo(*args):
    base = os.path.join(ROOT, 'configs', '_base_', 'models', 'upernet_vitpyramid.py')
    return subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'demo.py'), '--no-train',
                           '--config', base, '--cfg-options', *args], capture_output=True, text=True)


def test_demo_prints_the_pyramid():
    out = run_demo('model.backbone.model_name=vit_small_patch14_reg4_dinov2',
                   'model.backbone.img_size=224', 'model.backbone.depth=3',
                   'model.backbone.out_indices=[0,1,2,2]')
    assert out.returncode != 0 and 'same block twice' in out.stderr  # bad input: a clear message
    out = run_demo('model.backbone.model_name=vit_small_patch14_reg4_dinov2',
                   'model.backbone.img_size=224', 'model.backbone.depth=4',
                   'model.backbone.out_indices=[0,1,2,3]')
    assert out.returncode == 0, out.stderr
    assert 'registers: 4' in out.stdout
    assert 'image ' in out.stdout and '180x240' in out.stdout
    rows = [line.split() for line in out.stdout.splitlines()]
    assert ['p2', '96', '4', 'neck.levels.0', '0', '45x60', '1x96x45x60'] in rows, out.stdout
    assert ['p3', '192', '8', 'neck.levels.1', '1', '23x30', '1x192x23x30'] in rows, out.stdout
    assert ['p5', '384', '32', 'neck.levels.3', '3', '6x8', '1x384x6x8'] in rows, out.stdout
    assert 'decode_head.in_channels: [96, 192, 384, 384] (from feature_info)' in out.stdout


@pytest.mark.slow
def test_training_demo_learns(tmp_path):
    """The README's main command, shortened: trains on the generated data and beats chance."""
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'demo.py'), '--iters', '120',
                          '--work-dir', str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'trained 120 iterations' in out.stdout
    miou = [float(line.split()[1]) for line in out.stdout.splitlines() if line.startswith('mIoU ')]
    assert miou and miou[0] > 40.0, out.stdout[-2000:]  # chance (all background) is ~20 mIoU
