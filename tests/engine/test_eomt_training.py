"""EoMT and PMT trained through mmengine: the segmentor, its schedules (mask annealing driven by the
runner's iteration, EoMT's layer decay and two-stage warm-up), resumption mid-annealing, inference
in mmseg's whole and slide modes, and the errors that name the fix."""
import copy
import os

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS, init_default_scope
from mmseg.registry import MODELS

from test_mmseg_integration import fake_batch
from test_training import final_weights, logged, run_train, tiny_cfg

from conftest import ROOT

FSDP_BASE = os.path.join(ROOT, 'configs', '_base_', 'fsdp.py')
CAMVID_EOMT = os.path.join(ROOT, 'configs', 'eomt', 'eomt_vit-t16-scratch_1xb8-1000it_camvid-176x176.py')


def eomt_cfg(work_dir, data_root, max_iters=6, starts=(1, 3), ends=(4, 6), **network):
    """The shapes demo's data and schedule with the CamVid EoMT model, shrunk to seconds."""
    cfg = tiny_cfg(work_dir, data_root, max_iters=max_iters)
    camvid = Config.fromfile(CAMVID_EOMT)
    cfg.model = camvid.model
    cfg.model.data_preprocessor.size = (32, 32)
    cfg.model.network.update(dict(img_size=32, depth=4, embed_dim=32, num_heads=2, num_classes=4,
                                  num_queries=5, num_blocks=2), **network)
    cfg.model.loss.num_points = 64
    cfg.custom_hooks = [dict(type='MaskAnnealingHook', starts=list(starts), ends=list(ends))]
    return cfg


def build(cfg):
    init_default_scope('mmseg')
    return MODELS.build(copy.deepcopy(cfg.model))


# ----------------------------------------------------------------------------- optimisation
def test_eomt_layer_decay_puts_the_query_blocks_and_the_head_at_the_full_rate(tmp_path, shapes_root):
    """tue-mps/eomt's rule with 4 blocks, 2 of them query blocks, rate 0.8: block i before the
    query blocks at 0.8 ** (L - 1 - i), the stem as block 0, the query blocks, the final norm and
    everything outside the trunk at 1; the groups say whether they are the trunk's."""
    model = build(eomt_cfg(tmp_path, shapes_root))
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
        constructor='ViTLayerDecayOptimizerConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.8, full_rate_blocks=2)))
    scale = {n: g['lr'] for g in wrapper.optimizer.param_groups for n in g['param_names']}
    trunk = {n: g['trunk'] for g in wrapper.optimizer.param_groups for n in g['param_names']}
    blocks = 'network.trunk.model.blocks.'
    assert scale[blocks + '0.attn.qkv.weight'] == pytest.approx(0.8 ** 3)
    assert scale[blocks + '1.attn.qkv.weight'] == pytest.approx(0.8 ** 2)
    assert scale[blocks + '2.attn.qkv.weight'] == scale[blocks + '3.mlp.fc1.weight'] == 1.0
    assert scale['network.trunk.model.patch_embed.proj.weight'] == pytest.approx(0.8 ** 3)
    assert scale['network.trunk.model.norm.weight'] == scale['network.queries.weight'] == 1.0
    assert scale['network.head.class_head.weight'] == 1.0
    assert trunk[blocks + '3.mlp.fc1.weight'] and not trunk['network.head.class_head.weight']
    with pytest.raises(ValueError, match='full_rate_blocks=5: the trunk has 4 blocks'):
        build_optim_wrapper(model, dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0),
                                        constructor='ViTLayerDecayOptimizerConstructor',
                                        paramwise_cfg=dict(full_rate_blocks=5)))


def test_two_stage_warmup_scheduler_steps_and_resumes(tmp_path, shapes_root):
    model = build(eomt_cfg(tmp_path, shapes_root))
    wrapper_cfg = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3),
                       constructor='ViTLayerDecayOptimizerConstructor', paramwise_cfg=dict(layer_decay_rate=1.0))
    wrapper = build_optim_wrapper(model, wrapper_cfg)
    sched = PARAM_SCHEDULERS.build(dict(type='TwoStageWarmupPolyLR', warmup=(4, 4), power=1.0, end=20),
                                   default_args=dict(optimizer=wrapper))
    lrs = []
    for _ in range(10):
        lrs.append({g['trunk']: g['lr'] for g in wrapper.optimizer.param_groups})
        sched.step()
    # the head warms up over 4 iterations while the trunk waits at 0, then the trunk over 4 more
    assert [round(x[False] / 1e-3, 6) for x in lrs[:5]] == [0, 0.25, 0.5, 0.75, 1.0]
    assert [round(x[True] / 1e-3, 6) for x in lrs[:9]] == [0, 0, 0, 0, 0, 0.25, 0.5, 0.75, 1.0]
    assert lrs[9][True] == pytest.approx(1e-3 * (1 - 1 / 12)) and lrs[9][False] == pytest.approx(1e-3 * (1 - 5 / 16))
    other = build_optim_wrapper(model, wrapper_cfg)
    resumed = PARAM_SCHEDULERS.build(dict(type='TwoStageWarmupPolyLR', warmup=(4, 4), power=1.0, end=20),
                                     default_args=dict(optimizer=other))
    resumed.load_state_dict(sched.state_dict())
    assert resumed.get_last_value() == sched.get_last_value()
    plain = build_optim_wrapper(model, dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)))
    with pytest.raises(ValueError, match="'trunk' flag: use constructor='ViTLayerDecayOptimizerConstructor'"):
        PARAM_SCHEDULERS.build(dict(type='TwoStageWarmupPolyLR', end=20), default_args=dict(optimizer=plain))


# ----------------------------------------------------------------------------- training runs
def test_resume_mid_annealing_reproduces_the_uninterrupted_run(tmp_path, shapes_root):
    """Killed after iteration 3 (both masked blocks mid-annealing) and resumed: iterations 4-6
    give the losses of the uninterrupted run: the probabilities follow the runner's iteration and
    the random draws (released queries, loss points) a generator seeded by it."""
    full = eomt_cfg(tmp_path / 'full', shapes_root)
    full.default_hooks.checkpoint.interval = 3
    out = run_train(full)
    assert out.returncode == 0, out.stderr[-3000:]
    reference = logged(tmp_path / 'full')
    assert sorted(reference) == [1, 2, 3, 4, 5, 6]
    killed = copy.deepcopy(full)
    killed.work_dir = str(tmp_path / 'killed')
    killed.custom_imports = dict(imports=['vitadapter', 'crash_hook'], allow_failed_imports=False)
    killed.custom_hooks = full.custom_hooks + [dict(type='CrashAfterIter', iteration=3, priority='LOWEST')]
    assert run_train(killed).returncode == 17
    resumed = copy.deepcopy(killed)
    resumed.custom_hooks = full.custom_hooks
    out = run_train(resumed, '--resume')
    assert out.returncode == 0, out.stderr[-3000:]
    after = logged(tmp_path / 'killed')
    for it in (4, 5, 6):
        assert after[it] == pytest.approx(reference[it], rel=1e-6, abs=1e-7), (it, after[it], reference[it])
    # the intermediate predictions were trained (deep supervision of both query blocks)
    assert set(logged(tmp_path / 'full', 'd1.loss_mask')) == {1, 2, 3, 4, 5, 6}


def test_pmt_trains_its_decoder_only(tmp_path, shapes_root):
    cfg = eomt_cfg(tmp_path, shapes_root, max_iters=2, starts=(0, 1), ends=(1, 2))
    network = cfg.model.network
    cfg.model.network = dict(type='PMT', model_name='vit_small_patch16_dinov3', pretrained=False, img_size=32,
                             depth=4, embed_dim=32, num_heads=2, num_classes=4, num_queries=5,
                             num_decoder_layers=2)
    if 'vit_small_patch16_dinov3' not in __import__('timm').list_models('*dinov3*'):
        pytest.skip('this timm has no DINOv3')
    del network
    out = run_train(cfg)
    assert out.returncode == 0, out.stderr[-3000:]
    from vitadapter.engine import allow_mmengine_checkpoint_globals
    allow_mmengine_checkpoint_globals()
    state = torch.load(os.path.join(tmp_path, 'iter_2.pth'), weights_only=True)['state_dict']
    model = build(cfg)
    initial = model.state_dict()
    assert all(torch.equal(state[k], initial[k]) for k in initial if k.startswith('network.trunk.'))


def test_an_annealing_window_after_the_schedule_is_refused(tmp_path, shapes_root):
    cfg = eomt_cfg(tmp_path, shapes_root, max_iters=4, starts=(1, 3), ends=(4, 6))
    out = run_train(cfg)
    assert out.returncode != 0
    assert "mask annealing windows [1] end at [6], after the schedule's 4 iterations" in out.stderr


def test_training_without_the_annealing_hook_is_refused(tmp_path, shapes_root):
    model = build(eomt_cfg(tmp_path, shapes_root))
    wrapper = build_optim_wrapper(model, dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)))
    with pytest.raises(RuntimeError, match="add custom_hooks=\\[dict\\(type='MaskAnnealingHook'"):
        model.train_step(fake_batch(2, (32, 32), 4), wrapper)


# ----------------------------------------------------------------------------- AMP, DDP, FSDP
def _trained_parts(work_dir, iterations):
    """Which of (trunk blocks, queries, scale blocks, mask MLP, class head) changed between two
    checkpoints of a run: all of them must, whatever the strategy."""
    before, after = final_weights(work_dir, iterations[0]), final_weights(work_dir, iterations[1])
    changed = {k for k in after if after[k].is_floating_point() and not torch.equal(before[k], after[k])}
    parts = ('network.trunk.model.blocks.', 'network.queries.', 'network.head.upscale.',
             'network.head.mask_head.', 'network.head.class_head.')
    return {part: any(k.startswith(part) for k in changed) for part in parts}, after


@pytest.mark.slow
def test_eomt_trains_with_amp_and_grad_checkpointing(tmp_path, shapes_root):
    """tools/train.py --amp (bf16 on a CPU) with the trunk's blocks checkpointed: finite losses,
    every part trained (the head's lean training path runs its backward in bf16)."""
    # 3 iterations, compared after the 1st and 2nd (the poly schedule's rate is 0 at the last)
    cfg = eomt_cfg(tmp_path, shapes_root, max_iters=3, starts=(0, 1), ends=(2, 3), grad_checkpointing=True)
    cfg.default_hooks.checkpoint.interval = 1
    out = run_train(cfg, '--amp')
    assert out.returncode == 0, out.stderr[-3000:]
    losses = logged(tmp_path)
    assert sorted(losses) == [1, 2, 3] and all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    trained, _ = _trained_parts(tmp_path, (1, 2))
    assert all(trained.values()), trained


@pytest.mark.slow
@pytest.mark.parametrize('strategy', ['ddp', 'fsdp'])
def test_eomt_trains_on_two_processes(tmp_path, shapes_root, strategy):
    """tools/dist_train.sh, 2 processes: DDP, and the shipped FSDP switch (configs/_base_/fsdp.py:
    every trunk block an FSDP unit, checkpointed, bf16 compute; the queries and head in the root
    unit). Every part trains and the checkpoint is a plain segmentor's, strictly loadable."""
    cfg = eomt_cfg(tmp_path, shapes_root, max_iters=3, starts=(0, 1), ends=(2, 3))
    cfg.train_dataloader.batch_size = 2
    cfg.default_hooks.checkpoint.interval = 1
    if strategy == 'fsdp':
        switch = Config.fromfile(FSDP_BASE)
        cfg.runner_type, cfg.strategy = switch.runner_type, copy.deepcopy(switch.strategy)
    out = run_train(cfg, nproc=2)
    assert out.returncode == 0, out.stderr[-3000:]
    trained, after = _trained_parts(tmp_path, (1, 2))
    assert all(trained.values()), trained
    build(cfg).load_state_dict(after, strict=True)


# ----------------------------------------------------------------------------- inference
def test_whole_and_slide_inference_give_mmseg_predictions(tmp_path, shapes_root):
    cfg = eomt_cfg(tmp_path, shapes_root)
    model = build(cfg).eval()
    model.network.set_mask_probabilities([0.0, 0.0])
    batch = fake_batch(1, (40, 56), 4)
    data = model.data_preprocessor(batch, False)
    with torch.no_grad():
        whole = model.predict(data['inputs'], data['data_samples'])
        model.test_cfg = ConfigDict(mode='slide', crop_size=(40, 56), stride=(40, 56))
        one_window = model.predict(data['inputs'], copy.deepcopy(data['data_samples']))
        model.test_cfg = ConfigDict(mode='slide', crop_size=(32, 32), stride=(16, 16))
        slid = model.predict(data['inputs'], copy.deepcopy(data['data_samples']))
    logits = whole[0].seg_logits.data
    assert logits.shape == (4, 40, 56) and whole[0].pred_sem_seg.data.shape == (1, 40, 56)
    torch.testing.assert_close(one_window[0].seg_logits.data, logits, rtol=0, atol=1e-6)
    assert slid[0].seg_logits.data.shape == (4, 40, 56)
    scores = model.network.semantic_segmentation(data['inputs'])
    torch.testing.assert_close(logits, scores[0], rtol=0, atol=1e-6)
