"""The configs under mmseg's own tools: ``tools/train.py`` and ``tools/test.py`` as the installed
mmsegmentation package ships them (``mmseg/.mim/tools/``, what ``mim train mmsegmentation`` runs),
unchanged, on the CamVid config with the real data in ../shared (skipped where it is absent).
Every other config is built the stock way (``Config.fromfile`` + ``MODELS.build``, no vitadapter
pre-processing) in tests/test_configs.py.
"""
import importlib.util
import os
import subprocess
import sys

import mmseg
import pytest

from conftest import ROOT

STOCK_TOOLS = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'tools')
CAMVID_CONFIG = os.path.join(ROOT, 'configs', 'vitpyramid', 'upernet_vit-t16-scratch_1xb8-1000it_camvid-176x176.py')
CAMVID = os.path.join(ROOT, '..', 'shared', 'data', 'camvid')


def stock(tool: str, *args: str) -> subprocess.CompletedProcess:
    path = os.path.join(STOCK_TOOLS, tool)
    if not os.path.isfile(path):
        pytest.fail(f"mmseg {mmseg.__version__} ships no {path}: the stock tools moved")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '2'))
    return subprocess.run([sys.executable, path, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env)


@pytest.mark.skipif(not os.path.isdir(CAMVID), reason='CamVid is not in ../shared/data/camvid')
def test_camvid_config_trains_and_tests_with_mmseg_stock_tools(tmp_path):
    """The config is used as written (its relative data_root is the one in ../shared); only the
    schedule is cut to 4 iterations on the command line, as a user trying it would."""
    work = tmp_path / 'work'
    out = stock('train.py', CAMVID_CONFIG, '--work-dir', str(work), '--cfg-options',
                'train_cfg.max_iters=4', 'train_cfg.val_begin=5', 'train_dataloader.batch_size=2',
                'default_hooks.checkpoint.interval=4', 'default_hooks.logger.interval=1',
                'param_scheduler.0.end=2', 'param_scheduler.1.begin=2', 'param_scheduler.1.end=4')
    assert out.returncode == 0, out.stderr[-4000:]
    checkpoint = work / 'iter_4.pth'
    assert checkpoint.is_file(), os.listdir(work)

    out = stock('test.py', CAMVID_CONFIG, str(checkpoint), '--work-dir', str(tmp_path / 'test'),
                '--out', str(tmp_path / 'preds'))
    assert out.returncode == 0, out.stderr[-4000:]
    assert len(os.listdir(tmp_path / 'preds')) == 101  # one prediction per CamVid val image
    line = next(l for l in reversed((out.stdout + out.stderr).splitlines()) if 'mIoU:' in l)
    metrics = dict(kv.split(': ') for kv in line.split('Iter(test)')[-1].split('  ') if ': ' in kv)
    # the stock tool scored the predictions it wrote: the same mIoU and aAcc from those files and
    # the CamVid labels (void, label 11, ignored), to mmseg's two decimals
    miou, aacc = camvid_scores(tmp_path / 'preds', os.path.join(CAMVID, 'ann_dir', 'val'))
    assert float(metrics['mIoU']) == pytest.approx(miou, abs=0.0051)
    assert float(metrics['aAcc']) == pytest.approx(aacc, abs=0.0051)


def camvid_scores(pred_dir, label_dir, num_classes=11):
    """(mIoU, aAcc) in percent of the predicted label maps in ``pred_dir`` against ``label_dir``,
    as mmseg's IoUMetric computes them (classes never present nor predicted are left out)."""
    import numpy as np
    from PIL import Image
    intersect, union, correct, total = np.zeros(num_classes), np.zeros(num_classes), 0, 0
    for name in sorted(os.listdir(pred_dir)):
        pred = np.asarray(Image.open(os.path.join(pred_dir, name)), dtype=np.int64)
        label = np.asarray(Image.open(os.path.join(label_dir, name)), dtype=np.int64)
        valid = label < num_classes
        pred, label = pred[valid], label[valid]
        intersect += np.bincount(label[pred == label], minlength=num_classes)[:num_classes]
        area_pred = np.bincount(pred, minlength=num_classes)[:num_classes]
        area_label = np.bincount(label, minlength=num_classes)[:num_classes]
        union += area_pred + area_label - np.bincount(label[pred == label], minlength=num_classes)[:num_classes]
        correct, total = correct + int((pred == label).sum()), total + int(valid.sum())
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = intersect / union
    return 100 * float(np.nanmean(iou)), 100 * correct / total


HAS_MIM = importlib.util.find_spec('mim') is not None


@pytest.mark.skipif(not HAS_MIM, reason="openmim is installed on the upstream stack only (it needs pkg_resources "
                                        "and the distribution name mmsegmentation, which the fork lacks)")
def test_mim_trains_and_tests_a_config(tmp_path, shapes_root):
    """`mim train mmsegmentation CONFIG` and `mim test`, as the README says, on the demo config
    pointed at the generated shapes set (2 iterations)."""
    config = os.path.join(ROOT, 'configs', 'demo', 'upernet_vit-t16_1xb8-400it_shapes-96x96.py')
    data = [f'{loader}.dataset.data_root={shapes_root}' for loader in
            ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    mim = [sys.executable, '-m', 'mim']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    work = tmp_path / 'work'
    out = subprocess.run(mim + ['train', 'mmsegmentation', config, '--work-dir', str(work), '--cfg-options',
                                'train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'train_dataloader.batch_size=2',
                                'default_hooks.checkpoint.interval=2', *data],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert (work / 'iter_2.pth').is_file(), os.listdir(work)
    out = subprocess.run(mim + ['test', 'mmsegmentation', config, '--checkpoint', str(work / 'iter_2.pth'),
                                '--work-dir', str(tmp_path / 'test'), '--cfg-options', *data],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert 'mIoU:' in out.stdout + out.stderr
