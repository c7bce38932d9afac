"""Training through mmengine's Runner: layer decay, resume, DDP, AMP, grad checkpointing, freezing.

Every run is tiny (ViT with 2-4 blocks of width 32-64, 32x32 generated images, a few iterations)
so the file runs in about a minute on two CPU cores.
"""
import ast
import copy
import json
import os
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import MODELS

from vitadapter.engine import make_shapes_dataset, prepare_config

from conftest import ROOT, TESTS

DEMO_CONFIG = os.path.join(ROOT, 'configs', 'demo', 'upernet_vit-t16_1xb8-400it_shapes-96x96.py')
TRAIN = os.path.join(ROOT, 'tools', 'train.py')


def tiny_cfg(work_dir, data_root, max_iters=4, **backbone):
    """The demo config shrunk to seconds: deterministic (no dropout, no random augmentation, and
    FastUPerHead on one fixed formulation: 'auto' times both per process, so two processes could
    differ in float rounding where tests compare runs bit for bit)."""
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.work_dir = str(work_dir)
    cfg.model.data_preprocessor.size = (32, 32)
    cfg.model.backbone.update(dict(img_size=32, depth=4, embed_dim=32, num_heads=2), **backbone)
    cfg.model.decode_head.update(channels=16, pool_scales=(1, 2), fast_path=True)
    cfg.model.auxiliary_head.update(channels=8)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    cfg.train_dataloader.batch_size = 2
    cfg.train_dataloader.dataset.pipeline = [
        p for p in cfg.train_dataloader.dataset.pipeline if p['type'] != 'RandomFlip']
    cfg.train_cfg.update(max_iters=max_iters, val_interval=max_iters)
    cfg.param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=1.0, begin=0, end=max_iters,
                                by_epoch=False)]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.update(interval=max_iters, max_keep_ckpts=5)
    cfg.default_hooks.pop('visualization')
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.log_level = 'WARNING'
    return cfg


def logged(work_dir, key='loss'):
    """{iteration: value} of a scalar logged by mmengine (vis_data/scalars.json)."""
    values = {}
    for dirpath, _, files in os.walk(work_dir):
        if 'scalars.json' in files:
            with open(os.path.join(dirpath, 'scalars.json')) as f:
                for line in f:
                    row = json.loads(line)
                    if key in row and 'step' in row:
                        values[row['step']] = row[key]
    return values


# ------------------------------------------------------------------------------ layer decay
def test_layer_decay_lr_and_weight_decay_per_parameter(tmp_path, shapes_root):
    cfg = prepare_config(tiny_cfg(tmp_path, shapes_root))
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    wrapper_cfg = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
                       constructor='ViTLayerDecayOptimizerConstructor',
                       paramwise_cfg=dict(layer_decay_rate=0.5))
    optim = build_optim_wrapper(model, wrapper_cfg).optimizer
    lr, wd = {}, {}
    for group in optim.param_groups:
        for name in group['param_names']:
            lr[name], wd[name] = group['lr'], group['weight_decay']
    vit = 'backbone.trunk.model.'
    # 4 blocks: stem = layer 0 -> 0.5 ** 5; block i -> 0.5 ** (4 - i); the rest -> 1
    assert lr[vit + 'patch_embed.proj.weight'] == 0.5 ** 5
    assert lr[vit + 'pos_embed'] == lr[vit + 'cls_token'] == 0.5 ** 5
    for i in range(4):
        assert lr[vit + f'blocks.{i}.attn.qkv.weight'] == 0.5 ** (4 - i)
        assert lr[vit + f'blocks.{i}.norm1.weight'] == 0.5 ** (4 - i)
    neck_and_heads = [n for n in lr if not n.startswith(vit)]
    assert any(n.startswith('backbone.neck.') for n in neck_and_heads)
    assert any(n.startswith('decode_head.') for n in neck_and_heads)
    assert all(lr[n] == 1.0 for n in neck_and_heads)
    # weight decay: none on 1-D parameters, position embeddings and tokens
    for name in (vit + 'pos_embed', vit + 'cls_token', vit + 'blocks.0.norm1.weight',
                 vit + 'blocks.0.attn.qkv.bias', 'decode_head.conv_seg.bias'):
        assert wd[name] == 0.0, name
    for name in (vit + 'blocks.0.attn.qkv.weight', vit + 'patch_embed.proj.weight',
                 'decode_head.conv_seg.weight', 'backbone.neck.levels.0.0.weight'):
        assert wd[name] == 0.05, name
    assert set(lr) == {n for n, p in model.named_parameters() if p.requires_grad}


def test_layer_decay_register_tokens_and_errors(tmp_path, shapes_root):
    cfg = prepare_config(tiny_cfg(tmp_path, shapes_root, model_name='vit_small_patch14_reg4_dinov2'))
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
                   constructor='ViTLayerDecayOptimizerConstructor', paramwise_cfg=dict(layer_decay_rate=0.9))
    groups = build_optim_wrapper(model, wrapper).optimizer.param_groups
    names = {n: g for g in groups for n in g['param_names']}
    reg = names['backbone.trunk.model.reg_token']
    assert reg['weight_decay'] == 0.0 and reg['lr'] == pytest.approx(0.9 ** 5)
    with pytest.raises(ValueError, match=r'layer_decay_rate must be in \(0, 1\]'):
        build_optim_wrapper(model, dict(wrapper, paramwise_cfg=dict(layer_decay_rate=1.5)))
    with pytest.raises(ValueError, match='found no vitadapter trunk'):
        build_optim_wrapper(torch.nn.Linear(2, 2), wrapper)


def test_layer_decay_custom_keys(tmp_path, shapes_root):
    """mmengine's custom_keys on top of layer decay: the longest key in the name wins; lr_mult
    multiplies the layer scale, decay_mult the weight decay."""
    cfg = prepare_config(tiny_cfg(tmp_path, shapes_root))
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
                   constructor='ViTLayerDecayOptimizerConstructor',
                   paramwise_cfg=dict(layer_decay_rate=0.5, custom_keys={
                       'decode_head': dict(lr_mult=4.0), 'decode_head.conv_seg': dict(decay_mult=0.0),
                       'backbone.trunk': dict(lr_mult=0.1, decay_mult=2.0)}))
    groups = build_optim_wrapper(model, wrapper).optimizer.param_groups
    g = {n: grp for grp in groups for n in grp['param_names']}
    vit = 'backbone.trunk.model.'
    assert g[vit + 'blocks.3.attn.qkv.weight']['lr'] == pytest.approx(0.1 * 0.5)
    assert g[vit + 'blocks.3.attn.qkv.weight']['weight_decay'] == pytest.approx(0.1)
    assert g[vit + 'blocks.3.attn.qkv.bias']['weight_decay'] == 0.0  # 1-D: none, whatever the mult
    head = [n for n in g if n.startswith('decode_head.') and not n.startswith('decode_head.conv_seg')]
    assert head and all(g[n]['lr'] == 4.0 for n in head)
    # the longer key wins: conv_seg keeps lr x1 and loses its weight decay
    assert g['decode_head.conv_seg.weight']['lr'] == 1.0 and g['decode_head.conv_seg.weight']['weight_decay'] == 0.0
    assert g['backbone.neck.levels.0.0.weight']['lr'] == 1.0


# ------------------------------------------------------------------------------ head channels
def test_head_in_channels_follow_feature_info(tmp_path, shapes_root):
    """The segmentor (ViTEncoderDecoder) fills 'auto' when mmseg builds it: no config pre-processing."""
    cfg = tiny_cfg(tmp_path, shapes_root)
    assert cfg.model.type == 'ViTEncoderDecoder' and cfg.model.decode_head.in_channels == 'auto'
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    assert model.decode_head.in_channels == [8, 16, 32, 32] == model.backbone.feature_info.channels()
    assert model.auxiliary_head.in_channels == 32
    assert cfg.model.decode_head.in_channels == 'auto'  # the config itself is left as written
    bad = tiny_cfg(tmp_path, shapes_root)
    bad.model.decode_head.in_channels = [64, 64, 64, 64]
    with pytest.raises(ValueError, match=r"decode_head.in_channels=\[64, 64, 64, 64\] does not match "
                                         r"the backbone.*\[8, 16, 32, 32\].*in_channels='auto'"):
        MODELS.build(bad.model)


def test_auto_channels_under_mmseg_encoder_decoder_is_a_clear_error(tmp_path, shapes_root):
    """mmseg's own EncoderDecoder cannot fill 'auto' (its heads assert on the string): vitadapter's
    tools stop first with a message that names the fix."""
    cfg = tiny_cfg(tmp_path, shapes_root)
    cfg.model.type = 'EncoderDecoder'
    with pytest.raises(ValueError, match=r"decode_head, auxiliary_head: in_channels='auto'.*"
                                         r"'EncoderDecoder'.*type='ViTEncoderDecoder'"):
        prepare_config(cfg)
    cfg.model.decode_head.in_channels, cfg.model.auxiliary_head.in_channels = [8, 16, 32, 32], 32
    prepare_config(cfg)  # explicit channels: mmseg's segmentor is fine


# ------------------------------------------------------------------------------ runs
def run_train(cfg, *extra, nproc=1, cwd=None):
    """tools/train.py (or tools/dist_train.sh with nproc > 1) in a subprocess, on a dumped config."""
    os.makedirs(cfg.work_dir, exist_ok=True)
    path = os.path.join(cfg.work_dir, 'cfg.py')
    cfg.dump(path)
    if nproc == 1:
        cmd = [sys.executable, TRAIN, path, *extra]
    else:
        cmd = ['bash', os.path.join(ROOT, 'tools', 'dist_train.sh'), path, str(nproc), *extra]
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'],
               OMP_NUM_THREADS='1', PORT=str(29500 + os.getpid() % 1000),
               PYTHONPATH=os.pathsep.join([TESTS] + os.environ.get('PYTHONPATH', '').split(os.pathsep)))
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd or ROOT, env=env)


@pytest.mark.slow
def test_resume_reproduces_the_uninterrupted_run(tmp_path, shapes_root):
    full = tiny_cfg(tmp_path / 'full', shapes_root, max_iters=6)
    full.default_hooks.checkpoint.interval = 3
    out = run_train(full)
    assert out.returncode == 0, out.stderr[-3000:]
    reference = logged(tmp_path / 'full')
    assert sorted(reference) == [1, 2, 3, 4, 5, 6]

    # the same run, killed right after the checkpoint of iteration 3 is written
    killed = copy.deepcopy(full)
    killed.work_dir = str(tmp_path / 'killed')
    killed.custom_imports = dict(imports=['vitadapter', 'crash_hook'], allow_failed_imports=False)
    killed.custom_hooks = [dict(type='CrashAfterIter', iteration=3, priority='LOWEST')]
    out = run_train(killed)
    assert out.returncode == 17, out.stderr[-3000:]
    assert os.path.exists(tmp_path / 'killed' / 'iter_3.pth')
    assert not os.path.exists(tmp_path / 'killed' / 'iter_6.pth')
    resumed = copy.deepcopy(killed)
    resumed.custom_hooks = []
    out = run_train(resumed, '--resume')
    assert out.returncode == 0, out.stderr[-3000:]
    # the resumed run loaded the iteration-3 checkpoint (mmengine says from where it loads)
    assert re.search(r'Loads checkpoint .* from path: \S*killed/iter_3\.pth', out.stdout + out.stderr), \
        (out.stdout + out.stderr)[-3000:]
    after = logged(tmp_path / 'killed')
    for it in (4, 5, 6):
        assert after[it] == pytest.approx(reference[it], rel=1e-5, abs=1e-6), (it, after[it], reference[it])


def test_resume_loads_safely_without_disabling_weights_only(tmp_path, shapes_root):
    """mmengine checkpoints load with torch.load(weights_only=True) once vitadapter allowed the
    few classes they need; an arbitrary pickled object is still refused."""
    cfg = tiny_cfg(tmp_path, shapes_root, max_iters=1)
    out = run_train(cfg)
    assert out.returncode == 0, out.stderr[-3000:]
    import vitadapter.engine  # noqa: F401  (allowlist installed by prepare_config)
    from vitadapter.engine import allow_mmengine_checkpoint_globals
    allow_mmengine_checkpoint_globals()
    ckpt = torch.load(tmp_path / 'iter_1.pth', map_location='cpu', weights_only=True)
    assert ckpt['meta']['iter'] == 1 and 'message_hub' in ckpt and 'optimizer' in ckpt

    class Evil:
        def __reduce__(self):
            return (os.system, ('echo pwned',))
    torch.save({'x': Evil()}, tmp_path / 'evil.pth', _use_new_zipfile_serialization=True)
    with pytest.raises(Exception, match='(?i)weights_only|unsupported global'):
        torch.load(tmp_path / 'evil.pth', weights_only=True)


def final_weights(work_dir, iteration):
    from vitadapter.engine import allow_mmengine_checkpoint_globals
    allow_mmengine_checkpoint_globals()
    state = torch.load(os.path.join(work_dir, f'iter_{iteration}.pth'), map_location='cpu',
                       weights_only=True)['state_dict']
    return state


@pytest.mark.slow
def test_ddp_two_processes_match_one_process_with_double_batch(tmp_path, shapes_root):
    """2 gloo processes with batch 2 each == 1 process with batch 4, trained in float64.

    The two runs differ only in summation order (the gradient all-reduce, CPUSyncBN's statistics),
    so in float64 their weights differ by rounding amplified through 3 AdamW steps: each step moves
    a weight by at most about lr, and a gradient perturbed at rounding level (1e-16 relative)
    changes that move by at most ~|dg| / eps_adam = 1e-16 * |g| / 1e-8, i.e. < 1e-6 lr for |g| < 100.
    The bound, 1e-4 lr, is far above that and far below what a real fault gives (different data,
    missing gradient or BN synchronisation: differences of order lr)."""
    def cfg(work_dir, batch_size):
        c = tiny_cfg(work_dir, shapes_root, max_iters=3)
        c.custom_imports = dict(imports=['vitadapter', 'float64_training'], allow_failed_imports=False)
        c.train_dataloader.batch_size = batch_size
        return c
    single, ddp = cfg(tmp_path / 'single', 4), cfg(tmp_path / 'ddp', 2)
    out = run_train(single)
    assert out.returncode == 0, out.stderr[-3000:]
    out = run_train(ddp, nproc=2)
    assert out.returncode == 0, out.stderr[-3000:]
    # the runner's dump of the final config, read without its custom_imports (float64_training
    # would change this process's default dtype)
    dumped = Config.fromfile(str(tmp_path / 'ddp' / 'cfg.py'), import_custom_modules=False)
    assert dumped.launcher == 'pytorch' and dumped.env_cfg.dist_cfg.backend == 'gloo'
    assert dumped.model.decode_head.norm_cfg.type == 'CPUSyncBN'
    a, b = final_weights(tmp_path / 'single', 3), final_weights(tmp_path / 'ddp', 3)
    assert a.keys() == b.keys()
    assert a['decode_head.conv_seg.weight'].dtype == torch.float64
    lr = single.optim_wrapper.optimizer.lr
    worst = max((a[k] - b[k]).abs().max().item() for k in a if a[k].is_floating_point())
    assert worst < 1e-4 * lr, (worst, lr)
    # the heads' BN running statistics were synchronised: the batch-4 statistics up to rounding
    # (per-process BN would give each process's batch-2 statistics, different at order 1)
    for bn in ('decode_head.bottleneck.bn.running_mean', 'decode_head.bottleneck.bn.running_var'):
        scale = a[bn].abs().max().item()
        assert (a[bn] - b[bn]).abs().max().item() <= 1e-9 * scale, bn


def test_this_stack_still_needs_the_cpu_workarounds():
    """vitadapter's CPU AMP wrapper and gloo start-up exist because mmengine (0.10.7 upstream,
    0.10.12 onedl) cannot train on CPUs without them. When a stack fixes that, this test fails,
    and the workaround can be dropped for that stack."""
    import inspect

    import mmengine.dist.utils
    from mmengine.optim import AmpOptimWrapper
    if torch.cuda.is_available():
        pytest.skip('the workarounds are for machines without a GPU')
    with pytest.raises(AssertionError, match='only available training on gpu'):
        AmpOptimWrapper(optimizer=torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1))
    # mmengine's own torchrun start-up pins a CUDA device before creating the process group
    assert 'torch.cuda.set_device' in inspect.getsource(mmengine.dist.utils._init_dist_pytorch)


def test_amp_bf16_and_grad_checkpointing_train(tmp_path, shapes_root):
    cfg = tiny_cfg(tmp_path / 'amp', shapes_root, max_iters=2, grad_checkpointing=True)
    out = run_train(cfg, '--amp')
    assert out.returncode == 0, out.stderr[-3000:]
    losses = logged(tmp_path / 'amp')
    assert sorted(losses) == [1, 2] and all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    dumped = Config.fromfile(str(tmp_path / 'amp' / 'cfg.py'))  # the runner's dump of the final config
    assert dumped.optim_wrapper.type == 'CPUAmpOptimWrapper' and dumped.optim_wrapper.dtype == 'bfloat16'


def test_frozen_trunk_only_neck_and_heads_change(tmp_path, shapes_root):
    # 3 iterations: mmengine's PolyLR reaches lr = 0 at the last one
    cfg = tiny_cfg(tmp_path, shapes_root, max_iters=3, freeze_trunk=True)
    cfg.default_hooks.checkpoint.interval = 1
    prepare_config(cfg)
    init_default_scope('mmseg')
    runner = Runner.from_cfg(cfg)
    runner.train()
    before = final_weights(tmp_path, 1)
    after = final_weights(tmp_path, 2)
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    assert changed
    assert not any(k.startswith('backbone.trunk.') for k in changed), sorted(changed)[:5]
    assert any(k.startswith('backbone.neck.') for k in changed)
    assert any(k.startswith('decode_head.') for k in changed)


def test_test_tool_evaluates_a_trained_checkpoint(tmp_path, shapes_root):
    cfg = tiny_cfg(tmp_path / 'train', shapes_root, max_iters=2)
    out = run_train(cfg)
    assert out.returncode == 0, out.stderr[-3000:]
    test = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'test.py'),
                           str(tmp_path / 'train' / 'cfg.py'), str(tmp_path / 'train' / 'iter_2.pth'),
                           '--work-dir', str(tmp_path / 'test'), '--out', str(tmp_path / 'preds')],
                          capture_output=True, text=True, cwd=ROOT)
    assert test.returncode == 0, test.stderr[-3000:]
    metrics = ast.literal_eval(test.stdout.strip().splitlines()[-1])  # {'aAcc': .., 'mIoU': ..}
    assert set(metrics) == {'aAcc', 'mIoU', 'mAcc'} and 0 <= metrics['mIoU'] <= 100
    assert len(os.listdir(tmp_path / 'preds')) == 4  # one PNG per val image


def test_a_checkpoint_half_written_by_a_killed_run_is_skipped_on_resume(tmp_path, shapes_root):
    """Killed while writing iter_6.pth (after mmengine's last_checkpoint already named it, the
    worst case): --resume takes iter_3.pth, the newest complete one, says so, and finishes; the
    half-written file given explicitly is refused with the complete one to use instead."""
    cfg = tiny_cfg(tmp_path, shapes_root, max_iters=3)
    cfg.default_hooks.checkpoint.interval = 3
    assert run_train(cfg).returncode == 0
    complete = tmp_path / 'iter_3.pth'
    half = tmp_path / 'iter_6.pth'
    half.write_bytes(complete.read_bytes()[:len(complete.read_bytes()) // 2])
    (tmp_path / 'last_checkpoint').write_text(str(half))
    explicit = run_train(cfg, '--resume', str(half))
    assert explicit.returncode == 2 and 'Traceback' not in explicit.stderr
    assert f'--resume {half}: the file is incomplete' in explicit.stderr
    assert f'resume from {complete}, the last complete one' in explicit.stderr
    cfg.train_cfg.max_iters = 6
    cfg.param_scheduler[0]['end'] = 6
    resumed = run_train(cfg, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f'{half} is incomplete' in resumed.stderr and f'resuming from {complete}' in resumed.stderr
    assert re.search(r'Loads checkpoint .* from path: \S*iter_3\.pth', resumed.stdout + resumed.stderr)
    from vitadapter.engine.resume import is_complete
    assert is_complete(str(half))  # written anew at iteration 6


def test_a_data_folder_without_images_is_named_with_the_fix(tmp_path, shapes_root):
    empty = tmp_path / 'empty'
    (empty / 'img_dir' / 'train').mkdir(parents=True)
    cfg = tiny_cfg(tmp_path / 'work', str(empty), max_iters=1)
    out = run_train(cfg)
    assert out.returncode == 2 and 'Traceback' not in out.stderr, out.stderr[-3000:]
    assert f"ShapesDataset: {empty}/img_dir/train holds no .png image" in out.stderr
    assert '--data-root DIR' in out.stderr
    out = run_train(tiny_cfg(tmp_path / 'work2', str(tmp_path / 'nowhere'), max_iters=1))
    assert out.returncode == 2 and f"{tmp_path}/nowhere/img_dir/train does not exist" in out.stderr
