"""tools/info.py (vitadapter-info) and tools/visualize.py."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vitadapter.info import supported_models

from vitadapter.visualization import colorize, feature_pca_panel, pca_rgb, segmentation_panel

from conftest import HAS_MMSEG, own_lines, requires_mmseg, requires_timm_dinov3, ROOT

CONFIG_FOLDERS = sorted(d for d in os.listdir(os.path.join(ROOT, 'configs')) if not d.startswith('_'))


def tool(name, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, 'tools', name), *args],
                          capture_output=True, text=True)


class Ran:
    def __init__(self, returncode, captured):
        self.returncode, self.stdout, self.stderr = returncode, captured.out, captured.err


def info(capsys, *args):
    """vitadapter-info in this process (the console script itself: test_vitadapter_info_*)."""
    from vitadapter.info import main
    capsys.readouterr()
    code = main(list(args))
    return Ran(code, capsys.readouterr())


def test_inspect_model_name_table(capsys):
    out = info(capsys, 'vit_small_patch14_reg4_dinov2', '--size', '511', '383')
    assert out.returncode == 0, out.stderr
    assert 'depth 12, width 384, patch 14, prefix tokens 5 (class token yes, registers 4)' in out.stdout
    rows = [line.split() for line in out.stdout.splitlines()]
    assert ['p2', '96', '4', '2', '128x96'] in rows and ['p5', '384', '32', '11', '16x12'] in rows
    assert "head in_channels: [96, 192, 384, 384]" in out.stdout


@requires_mmseg
def test_inspect_config_counts_every_part(capsys):
    cfg = os.path.join(ROOT, 'configs', 'vitpyramid', 'fpn_vit-b16-deit_4xb4-80k_ade20k-512x512.py')
    out = info(capsys, cfg)
    assert out.returncode == 0, out.stderr
    parts = {line.rsplit(None, 2)[0].strip(): float(line.split()[-2]) for line in out.stdout.splitlines()
             if line.endswith(' M')}
    assert 85 < parts['backbone.trunk (ViT)'] < 87  # ViT-B/16 minus its classifier
    assert parts['neck'] > 0 and parts['decode_head'] > 0
    assert parts['total'] == pytest.approx(sum(v for k, v in parts.items() if k != 'total'), abs=0.02)


@pytest.mark.skipif(HAS_MMSEG, reason='the message for environments without the mmseg extra')
def test_inspect_config_without_mmseg_names_the_extra():
    cfg = os.path.join(ROOT, 'configs', 'vitpyramid', 'fpn_vit-b16-deit_4xb4-80k_ade20k-512x512.py')
    out = tool('info.py', cfg)
    assert out.returncode != 0
    assert "needs the mmseg extra (pip install 'vitadapter[mmseg]')" in out.stderr, out.stderr[-2000:]
    assert 'Traceback' not in out.stderr


def first_config(folder):
    names = sorted(n for n in os.listdir(os.path.join(ROOT, 'configs', folder)) if n.endswith('.py'))
    return os.path.join(ROOT, 'configs', folder, names[0])


@requires_mmseg
@pytest.mark.parametrize('folder', CONFIG_FOLDERS)
def test_info_describes_a_config_of_every_folder(folder, capsys):
    """vitadapter-info on a config of every folder: a vitadapter backbone from its feature_info
    (ViTPyramid, ViTAdapter, DINOv3Adapter), mmseg's own ViT by its outputs; a detection config on
    a stack without mmdet's compiled ops is one line saying so, no traceback. In this process (an
    unexpected exception fails the test with its traceback); test_vitadapter_info_console_script
    runs the installed command."""
    from vitadapter.info import main
    code = main([first_config(folder), '--size', '64', '64'])
    out = capsys.readouterr()
    if folder == 'vitdet' and code == 2:
        assert 'DetectionStackError' in out.err and 'Traceback' not in out.err, out.err[-2000:]
        assert len(own_lines(out.err)) == 1, out.err
        return
    assert code == 0, out.err[-3000:]
    lines = own_lines(out.out)
    assert any(line.startswith('total ') for line in lines), out.out
    if folder == 'baselines':  # mmseg's VisionTransformer: its outputs for a 64x64 image
        assert 'not a vitadapter backbone' in out.out and '1x192x4x4' in out.out
    elif folder in ('eomt', 'pmt'):  # no backbone: the network, its queries and masks
        assert lines[1].startswith('trunk: ') and '100 queries in ' in out.out
        assert 'masks at 16x16 (stride 4) for 64x64' in out.out
    else:
        assert lines[1].startswith('trunk: ') and "head in_channels:" in out.out


def test_inspect_list_and_errors(capsys):
    names = supported_models('*dinov2*')
    assert 'vit_small_patch14_reg4_dinov2' in names and 'vit_giant_patch14_dinov2' in names
    assert not [n for n in supported_models('resnet*')]
    out = info(capsys, '--list', 'reg4_dinov2')
    assert out.returncode == 0 and 'vit_base_patch14_reg4_dinov2' in out.stdout.split()
    out = info(capsys, 'vit_bse_patch16_224')
    assert out.returncode == 2 and 'did you mean' in out.stderr and 'vit_base_patch16_224' in out.stderr


def test_pca_rgb_separates_regions():
    feats = torch.zeros(8, 10, 10)
    feats[0, :, :5] = 5.0  # two regions along the first direction
    feats[1:] = torch.randn(7, 10, 10) * 0.01
    rgb = pca_rgb(feats)
    assert rgb.shape == (10, 10, 3) and rgb.dtype == np.uint8
    left, right = rgb[:, :5, 0].astype(int).mean(), rgb[:, 5:, 0].astype(int).mean()
    assert abs(left - right) > 200


def test_panels_have_the_expected_size():
    image = np.zeros((60, 80, 3), np.uint8)
    levels = [torch.randn(1, 16, 15, 20), torch.randn(1, 16, 8, 10)]
    panel = feature_pca_panel(image, levels)
    assert panel.size == (80 * 3 + 4 * 2, 60)
    pred = np.zeros((60, 80), np.int64)
    label = np.ones((60, 80), np.uint8)
    label[:10] = 255
    seg = segmentation_panel(image, pred, [[255, 0, 0], [0, 255, 0]], label)
    assert seg.size == (80 * 3 + 8, 60)
    err = np.asarray(seg)[:, 2 * 84:]
    assert (err[:10] == 0).all() and (err[20:, :, 0] == 220).all()  # ignored black, wrong red
    assert colorize(np.array([[0, 1, 255]]), [[1, 2, 3], [4, 5, 6]]).tolist() == [[[1, 2, 3], [4, 5, 6], [0, 0, 0]]]


@requires_mmseg
def test_visualize_features_writes_a_png(tmp_path):
    out = tool('visualize.py', 'features', '--model', 'vit_small_patch16_224', '--out',
               str(tmp_path / 'pca.png'))
    assert out.returncode == 0, out.stderr
    picture = Image.open(tmp_path / 'pca.png')
    assert picture.format == 'PNG' and picture.size == (240 * 5 + 4 * 4, 180)  # image + 4 levels


@pytest.mark.slow
@requires_mmseg
def test_visualize_prediction_of_a_trained_segmentor(tmp_path):
    demo = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'demo.py'), '--iters', '20',
                           '--work-dir', str(tmp_path)], capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr[-2000:]
    # the console: the pyramid, progress, the per-class table and the metrics; mmengine's lines
    # (the config dump first) are in the log file it names, and no third-party notice is shown
    shown = demo.stdout + demo.stderr
    assert 'p5 ' in demo.stdout and 'iteration   20/20' in demo.stdout and '|   Class    |' in demo.stdout
    assert 'mmengine - INFO' not in shown and 'Config:' not in shown and 'Warning' not in shown, shown[-3000:]
    log_file = re.search(r"the whole log: (\S+);", demo.stdout).group(1)
    with open(log_file) as f:
        logged = f.read()
    assert 'Config:' in logged and 'Iter(train) [20/20]' in logged
    cfg = os.path.join(ROOT, 'configs', 'demo', 'upernet_vit-t16_1xb8-400it_shapes-96x96.py')
    image = tmp_path / 'shapes' / 'img_dir' / 'val' / '0000.png'
    label = tmp_path / 'shapes' / 'ann_dir' / 'val' / '0000.png'
    out = tool('visualize.py', 'predict', '--config', cfg, '--checkpoint', str(tmp_path / 'iter_20.pth'),
               '--image', str(image), '--label', str(label), '--out', str(tmp_path / 'pred.png'))
    assert out.returncode == 0, out.stderr[-2000:]
    assert Image.open(tmp_path / 'pred.png').size == (96 * 3 + 8, 96)


def test_majority_baseline(tmp_path):
    for split, maps in (('train', [[0, 0, 1, 11]]), ('val', [[0, 1, 1, 255], [1, 2, 0, 0]])):
        os.makedirs(tmp_path / 'ann_dir' / split)
        for i, row in enumerate(maps):
            Image.fromarray(np.array([row], np.uint8)).save(tmp_path / 'ann_dir' / split / f'{i}.png')
    out = tool('majority_baseline.py', '--data-root', str(tmp_path), '--num-classes', '3')
    assert out.returncode == 0, out.stderr
    # class 0 is the majority in train; val has 7 valid pixels, 3 of class 0: IoU 3/7, mIoU 1/7
    assert 'majority class in train: 0 (66.7% of labelled pixels)' in out.stdout
    assert 'val: aAcc 42.86, mIoU 14.29' in out.stdout


def test_vitadapter_info_console_script():
    script = os.path.join(os.path.dirname(sys.executable), 'vitadapter-info')
    assert os.path.exists(script), 'pip install (tools/in_venv.sh) installs the console script'
    out = subprocess.run([script, '--list', 'small_patch14_reg4'], capture_output=True, text=True)
    assert out.returncode == 0 and own_lines(out.stdout) == ['vit_small_patch14_reg4_dinov2']


@requires_timm_dinov3
def test_vitadapter_info_dinov3():
    """The issue's check: `vitadapter-info vit_base_patch16_dinov3 --size 512 512`."""
    script = os.path.join(os.path.dirname(sys.executable), 'vitadapter-info')
    out = subprocess.run([script, 'vit_base_patch16_dinov3', '--size', '512', '512'], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert 'depth 12, width 768, patch 16, prefix tokens 5 (class token yes, registers 4)' in out.stdout
    rows = [line.split() for line in out.stdout.splitlines()]
    assert ['p2', '192', '4', '2', '128x128'] in rows and ['p5', '768', '32', '11', '16x16'] in rows
    assert "head in_channels: [192, 384, 768, 768]" in out.stdout
    listed = supported_models('*dinov3*')  # what --list prints (test_inspect_list_and_errors)
    assert {'vit_7b_patch16_dinov3', 'vit_huge_plus_patch16_dinov3_qkvb', 'vit_small_plus_patch16_dinov3'} <= set(listed)
