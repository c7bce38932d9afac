"""The configs under mmseg's own tools: ``tools/train.py`` and ``tools/test.py`` as the installed
mmsegmentation package ships them (``mmseg/.mim/tools/``, what ``mim train mmsegmentation`` runs),
unchanged, on the CamVid config with the real data in ../shared (skipped where it is absent).
Every other config is built the stock way (``Config.fromfile`` + ``MODELS.build``, no vitadapter
pre-processing) in tests/test_configs.py.
"""
import os
import subprocess
import sys

import mmseg
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STOCK_TOOLS = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'tools')
CAMVID_CONFIG = os.path.join(ROOT, 'configs', 'vitpyramid', 'upernet_vit-t16-scratch_1000it_camvid-176x176.py')
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
    assert 0.0 <= float(metrics['mIoU']) <= 100.0 and 0.0 < float(metrics['aAcc']) <= 100.0
