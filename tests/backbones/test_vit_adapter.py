"""ViTAdapter: presets, shapes and feature_info, any input size, gradients, the injector's gamma,
the norm layers (build_norm2d without mmcv), the trunk's token hooks, mmseg training. The
deformable attention has its own tests in test_deform_attn.py."""
import math

import pytest
import torch
import torch.nn as nn

import vitadapter
from vitadapter import TimmViTTrunk, ViTAdapter
from vitadapter.backbones.vit_adapter import ARCHS, default_interactions
from vitadapter.layers import reference_points, tokens_to_maps
from vitadapter.necks.adapter import interaction_geometry
from vitadapter.layers import build_norm2d, norm_types, register_norm

from conftest import assert_same_gradients, ceil_sizes, FAMILIES, gradients, requires_mmseg, tiny

STRIDES = (4, 8, 16, 32)


def tiny_adapter(family='vit', **overrides):
    """A tiny ViTAdapter on a tiny real timm family (4 blocks of width 64, 4 interactions)."""
    return ViTAdapter(**{**tiny(family), 'deform_num_heads': 4, 'conv_inplane': 16, **overrides})


# ----------------------------------------------------------------------------- presets, shapes
@pytest.mark.parametrize('arch', ['tiny', 'small', 'base'])
@pytest.mark.parametrize('trunk', ['preset', 'dinov2_reg'])
def test_presets_give_feature_info_and_shapes(arch, trunk):
    """T/S/B at their real widths (4 blocks instead of 12) on the preset's DeiT (patch 16) and on
    DINOv2 with registers (patch 14, class and register tokens through the blocks)."""
    kwargs = dict(arch=arch, depth=4, img_size=64, conv_inplane=16)
    if trunk == 'dinov2_reg':
        kwargs.update(model_name=FAMILIES['dinov2_reg'][0], embed_dim=ARCHS[arch]['deform_num_heads'] * 32,
                      num_heads=4, with_cls_token=True)
    model = ViTAdapter(**kwargs).eval()
    dim = model.trunk.embed_dim
    expected_dim = {'tiny': 192, 'small': 384, 'base': 768}[arch] if trunk == 'preset' else kwargs['embed_dim']
    assert dim == expected_dim
    assert model.trunk.patch_size == ((16, 16) if trunk == 'preset' else (14, 14))
    assert model.interactions[0].injector.attn.num_heads == ARCHS[arch]['deform_num_heads']
    assert model.interactions[0].injector.attn.value_dim == int(dim * ARCHS[arch]['deform_ratio'])
    assert model.interaction_indexes == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert len(model.interactions[-1].extra_extractors) == 2
    assert all(len(i.extra_extractors) == 0 for i in model.interactions[:-1])
    info = model.feature_info
    assert info.channels() == [dim] * 4 and info.reduction() == list(STRIDES)
    assert info.module_name() == [f'output.norms.{i}' for i in range(4)]
    assert [d['block'] for d in info.get_dicts()] == [0, 1, 2, 3]
    assert set(model.output_shape()) == {'p2', 'p3', 'p4', 'p5'}
    with torch.no_grad():
        levels = model(torch.randn(1, 3, 64, 96))
    assert [tuple(y.shape) for y in levels] == [(1, dim, h, w) for h, w in ceil_sizes((64, 96))]


def test_default_interactions_are_four_equal_slices():
    assert default_interactions(12) == [(0, 2), (3, 5), (6, 8), (9, 11)]
    assert default_interactions(24) == [(0, 5), (6, 11), (12, 17), (18, 23)]


@pytest.mark.parametrize('family,size', [('vit', (45, 77)), ('dinov2_reg', (33, 50)),
                                         ('eva02', (97, 70)), ('siglip', (16, 16))])
def test_any_input_size_gives_ceil_sized_levels(family, size):
    model = tiny_adapter(family, with_cls_token=family == 'dinov2_reg').eval()
    with torch.no_grad():
        levels = model(torch.randn(2, 3, *size))
    assert [tuple(y.shape[-2:]) for y in levels] == ceil_sizes(size) == model.output_sizes(size)
    assert all(torch.isfinite(y).all() for y in levels)


@requires_mmseg
def test_registered_in_mmseg():
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    model = MODELS.build(dict(type='ViTAdapter', **tiny('vit'), deform_num_heads=4, conv_inplane=16))
    assert isinstance(model, vitadapter.ViTAdapter) and MODELS.get('ViTAdapter') is ViTAdapter


# ----------------------------------------------------------------------------- gradients, gamma
def test_gradients_reach_the_spatial_prior_and_the_vit():
    model = tiny_adapter()
    model.train()
    levels = model(torch.randn(2, 3, 64, 64))
    sum(y.pow(2).mean() for y in levels).backward()
    vit = model.trunk.model
    for name, module in [('spm stem', model.spm.stem), ('spm fc4', model.spm.fc4),
                         ('level_embed', model.level_embed), ('patch_embed', vit.patch_embed),
                         ('block 0', vit.blocks[0]), ('last block', vit.blocks[-1]),
                         ('extractor', model.interactions[0].extractor),
                         ('extra extractor', model.interactions[-1].extra_extractors[1]),
                         ('output', model.output)]:
        grads = [p.grad for p in module.parameters()]
        assert grads and all(g is not None for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, name
    injector = model.interactions[0].injector
    # gamma = 0: the injector's attention gets no gradient yet, gamma does (the official behaviour)
    assert injector.gamma.grad.abs().sum() > 0
    assert injector.attn.value_proj.weight.grad.abs().sum() == 0


@pytest.mark.parametrize('family,with_cls', [('vit', False), ('dinov2_reg', True), ('eva02', False)])
def test_gamma_zero_leaves_the_vit_blocks_untouched(family, with_cls):
    """With gamma = 0 (init), every block sees exactly the tokens of the bare ViT."""
    model = tiny_adapter(family, with_cls_token=with_cls).eval()
    assert all(torch.equal(i.injector.gamma, torch.zeros_like(i.injector.gamma)) for i in model.interactions)
    seen = []
    hooks = [b.register_forward_pre_hook(lambda m, args: seen.append(args[0])) for b in model.trunk.model.blocks]
    x = torch.randn(2, 3, 50, 70)
    with torch.no_grad():
        model(x)
        for h in hooks:
            h.remove()
        seq = model.trunk.embed(x)  # the adapter's rule, fixed when its trunk was built ('bicubic')
        assert model.trunk.pos_embed_interp == 'bicubic'
        bare = [seq.tokens]
        for i in range(model.trunk.num_blocks - 1):
            seq = model.trunk.run_blocks(seq, i, i + 1)
            bare.append(seq.tokens)
    assert len(seen) == len(bare) == 4
    for a, b in zip(seen, bare):
        assert torch.equal(a, b)
    # and a non-zero gamma does change them
    with torch.no_grad():
        model.interactions[1].injector.gamma.fill_(0.5)
        seen.clear()
        hooks = [b.register_forward_pre_hook(lambda m, args: seen.append(args[0])) for b in model.trunk.model.blocks]
        model(x)
    assert torch.equal(seen[0], bare[0]) and not torch.allclose(seen[1], bare[1])


def test_with_cls_token_keeps_timm_features_exactly():
    """DINOv2 with registers, class and register tokens kept, gamma 0: the ViT's last block equals
    timm's own forward_intermediates."""
    model = tiny_adapter('dinov2_reg', with_cls_token=True, pos_embed_interp='timm').eval()
    last = []
    model.trunk.model.blocks[-1].register_forward_hook(lambda m, args, out: last.append(out))
    x = torch.randn(1, 3, 56, 84)  # whole patches of 14
    with torch.no_grad():
        model(x)
        ref = model.trunk.model.forward_intermediates(x, indices=[3], intermediates_only=True,
                                                      output_fmt='NLC', return_prefix_tokens=True)[0]
    assert torch.equal(last[0], torch.cat([ref[1], ref[0]], dim=1))


# ----------------------------------------------------------------------------- geometry
def test_reference_points_are_pixel_exact():
    """Multiples of 32 with patch 16: the official (j + 0.5) / n on every level. Any other size or
    patch 14: each query points at its own pixel centre on every level."""
    official = (torch.arange(6, dtype=torch.float64) + 0.5) / 6  # exact to 2^-53
    geo = interaction_geometry((4, 6), (16, 16), [(8, 12), (4, 6), (2, 3)], (8, 16, 32))
    inject = geo.inject.reference_points[0]  # (24, 3, 2)
    # ours is float32: (j + 0.5) / 6 rounded once or twice (a division may be done as a product by
    # the reciprocal, depending on the kernel torch picks): within 2 * 2^-24 relative
    assert torch.allclose(inject[:6, :, 0].double(), official[:, None].expand(6, 3), rtol=2 ** -23, atol=0)
    refs = reference_points([(3, 4)], [(14, 14)], [(5, 7), (2, 2)], [(8, 8), (32, 32)])[0]
    centre_x = (torch.arange(4) + 0.5) * 14
    # float32: the reference point and the product by 7 are rounded once each (2^-24 relative), the
    # products by powers of two are exact: within 2 * 2^-24 (rtol 2^-22 leaves a factor 2)
    exact = dict(rtol=2 ** -22, atol=0)
    assert torch.allclose(refs[:4, 0, 0] * 7 * 8, centre_x, **exact)
    assert torch.allclose(refs[:4, 1, 0] * 2 * 32, centre_x, **exact)


# ----------------------------------------------------------------------------- options and errors
@pytest.mark.parametrize('setting', [True, 'adapter'])
def test_grad_checkpointing_gives_the_same_gradients(setting):
    torch.manual_seed(0)
    plain = tiny_adapter(drop_path_rate=0.0)
    ckpt = tiny_adapter(drop_path_rate=0.0, grad_checkpointing=setting)
    ckpt.load_state_dict(plain.state_dict())
    for m in (plain, ckpt):
        m.double().train()
    x = torch.randn(2, 3, 48, 64, dtype=torch.float64)
    for m in (plain, ckpt):
        for p in m.parameters():
            p.grad = None
        sum(y.pow(2).mean() for y in m(x)).backward()
    assert_same_gradients(gradients(plain), gradients(ckpt))


def test_grad_checkpointing_adapter_recomputes_the_interactions_only():
    """'adapter': the injectors and extractors run under checkpointing (their activations are
    recomputed), the ViT blocks do not; True: both; anything else is refused."""
    def checkpointed(model):
        """The blocks, injectors and extractors whose layers run again in the backward pass
        (forward pre-hooks: a recomputation may stop early, before a module's forward returns)."""
        calls = {}
        for name, m in model.named_modules():
            parts = name.split('.')
            owner = '.'.join(parts[:3]) if len(parts) == 4 and parts[2] in ('injector', 'extractor') \
                else name if len(parts) == 4 and parts[:3] == ['trunk', 'model', 'blocks'] else None
            if owner:  # an injector's / extractor's own layers, or a ViT block
                m.register_forward_pre_hook(
                    lambda *_, key=name, owner=owner: calls.setdefault(owner, []).append(key))
        sum(y.sum() for y in model.train()(torch.randn(2, 3, 64, 64))).backward()
        return {o for o, keys in calls.items() if len(keys) > len(set(keys))}, set(calls)
    twice, seen = checkpointed(tiny_adapter(drop_path_rate=0.0, grad_checkpointing='adapter'))
    assert twice == {n for n in seen if n.endswith(('injector', 'extractor'))} and twice
    twice, seen = checkpointed(tiny_adapter(drop_path_rate=0.0, grad_checkpointing=True))
    assert twice == seen
    twice, _ = checkpointed(tiny_adapter(drop_path_rate=0.0))
    assert twice == set()
    with pytest.raises(ValueError, match="grad_checkpointing='blocks'.*'adapter'"):
        tiny_adapter(grad_checkpointing='blocks')


def test_frozen_trunk_trains_the_adapter_only():
    model = tiny_adapter('dinov2_reg', with_cls_token=True, freeze_trunk=True)
    model.train()
    assert not model.trunk.model.training and model.spm.training
    assert not any(p.requires_grad for p in model.trunk.parameters())
    sum(y.mean() for y in model(torch.randn(1, 3, 42, 42))).backward()
    assert model.spm.fc1.weight.grad is not None


@pytest.mark.parametrize('norm_cfg,kind', [(dict(type='LN2d'), 'LayerNorm2d'),
                                           (dict(type='GN', num_groups=4), 'GroupNorm'),
                                           (dict(type='BN'), 'BatchNorm2d')])
def test_norm_layers_are_configurable(norm_cfg, kind):
    model = tiny_adapter(norm_cfg=norm_cfg).train()
    assert {type(n).__name__ for n in model.output.norms} == {kind}
    assert kind in {type(m).__name__ for m in model.spm.modules()}
    assert len(model(torch.randn(1, 3, 64, 64))) == 4  # batch 1 trains on one CPU


NORM_CASES = [  # (norm_cfg, torch class, attributes it must have)
    (dict(type='LN2d', eps=1e-5), 'LayerNorm2d', dict(eps=1e-5)),
    (dict(type='BN', momentum=0.3, eps=1e-3), nn.BatchNorm2d, dict(momentum=0.3, eps=1e-3)),
    (dict(type='BN2d', affine=False), nn.BatchNorm2d, dict(affine=False, eps=1e-5)),
    (dict(type='SyncBN', momentum=0.01), nn.SyncBatchNorm, dict(momentum=0.01)),
    (dict(type='GN', num_groups=4, eps=1e-6), nn.GroupNorm, dict(num_groups=4, num_channels=8, eps=1e-6)),
    (dict(type='IN', affine=True), nn.InstanceNorm2d, dict(affine=True, track_running_stats=False)),
]


@pytest.mark.parametrize('norm_cfg,cls,attributes', NORM_CASES)
def test_build_norm2d_builds_torch_norms_with_mmcv_keys(norm_cfg, cls, attributes):
    given = dict(norm_cfg)
    layer = build_norm2d(norm_cfg, 8)
    assert norm_cfg == given  # the config is not consumed
    assert type(layer).__name__ == cls if isinstance(cls, str) else type(layer) is cls
    assert {k: getattr(layer, k) for k in attributes} == attributes
    assert all(p.requires_grad for p in layer.parameters())
    frozen = build_norm2d({**norm_cfg, 'requires_grad': False}, 8)
    assert all(not p.requires_grad for p in frozen.parameters())
    assert [n for n, _ in frozen.named_parameters()] == [n for n, _ in layer.named_parameters()]


def test_build_norm2d_gives_the_state_dict_mmcv_gave():
    """Checkpoints saved with mmcv's build_norm_layer keep loading: same keys."""
    keys = ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    for norm_type in ('BN', 'BN2d', 'SyncBN'):
        assert list(build_norm2d(dict(type=norm_type), 8).state_dict()) == keys
    assert list(build_norm2d(dict(type='GN', num_groups=2), 8).state_dict()) == ['weight', 'bias']
    assert list(build_norm2d(dict(type='LN2d'), 8).state_dict()) == ['weight', 'bias']
    assert isinstance(build_norm2d(None, 8), nn.Identity)


@requires_mmseg
def test_build_norm2d_matches_mmcv_build_norm_layer():
    import mmcv.cnn as mmcv_cnn
    for cfg in (dict(type='BN', momentum=0.3, requires_grad=False), dict(type='SyncBN'),
                dict(type='GN', num_groups=4, eps=1e-6), dict(type='IN', affine=True)):
        ours, theirs = build_norm2d(cfg, 8), mmcv_cnn.build_norm_layer(cfg, 8)[1]
        assert type(ours) in type(theirs).__mro__  # mmengine's SyncBatchNorm only subclasses torch's
        assert repr(ours) == repr(theirs)
        assert {k: v.shape for k, v in ours.state_dict().items()} == \
            {k: v.shape for k, v in theirs.state_dict().items()}
        assert [p.requires_grad for p in ours.parameters()] == [p.requires_grad for p in theirs.parameters()]


def test_build_norm2d_errors_and_registry():
    with pytest.raises(ValueError, match=r"unknown norm type 'LN' in norm_cfg; known types: \['BN', "
                                         r"'BN2d', .*'LN2d'.*register_norm"):
        build_norm2d(dict(type='LN'), 8)
    with pytest.raises(ValueError, match=r"'GN' needs num_groups, e.g. dict\(type='GN', num_groups=32\)"):
        build_norm2d(dict(type='GN'), 8)
    with pytest.raises(ValueError, match=r"norm_cfg must be a dict with a 'type' key"):
        build_norm2d('BN', 8)
    with pytest.raises(ValueError, match=r"norm type 'BN' is already registered"):
        register_norm('BN', nn.LayerNorm)
    assert register_norm('BN', nn.BatchNorm2d) is nn.BatchNorm2d  # same builder again: no-op


@requires_mmseg
def test_the_mmseg_glue_registers_cpu_sync_bn_as_a_norm():
    from vitadapter.engine.training.sync_bn import CPUSyncBatchNorm  # the mmseg glue registers CPUSyncBN
    assert 'CPUSyncBN' in norm_types()
    layer = build_norm2d(dict(type='CPUSyncBN', momentum=0.2, requires_grad=False), 8)
    assert type(layer) is CPUSyncBatchNorm and layer.momentum == 0.2
    assert not layer.weight.requires_grad


@pytest.mark.parametrize('kwargs,message', [
    (dict(arch='huge'), r"unknown ViTAdapter arch 'huge'; choose one of \['base', 'large', 'small', 'tiny'\]"),
    (dict(interaction_indexes=[[0, 1], [3, 3]]), r'consecutive blocks from block 0.*\[3, 3\] should start at 2'),
    (dict(interaction_indexes=[[0, 1], [2, 5]]), r'reach block 5 but the ViT has 4 blocks'),
    (dict(interaction_indexes=[[0, 1], [2, 3]]), r'add_vit_feature=True .* needs 4 interactions; got 2'),
    (dict(deform_num_heads=5), r'value width 64 .* not divisible by 5 heads; change deform_num_heads'),
    (dict(patch_drop_rate=0.5), r'patch dropout.*patch_drop_rate=0'),
])
def test_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_adapter(**kwargs)


def test_model_name_or_arch_is_required():
    with pytest.raises(ValueError, match='needs a model_name'):
        ViTAdapter()


def test_one_interaction_without_vit_features():
    """The official 'light' variant: one interaction over all blocks, no added ViT features."""
    model = tiny_adapter(interaction_indexes=[[0, 3]], add_vit_feature=False, with_cffn=False).eval()
    assert [d['block'] for d in model.feature_info.get_dicts()] == [3] * 4
    with torch.no_grad():
        assert [tuple(y.shape[-2:]) for y in model(torch.randn(1, 3, 64, 64))] == ceil_sizes((64, 64))


# ----------------------------------------------------------------------------- trunk token hooks
@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_token_hooks_equal_timm_forward_intermediates(family):
    """embed() + run_blocks() in slices give exactly timm's tokens (prefix tokens first)."""
    trunk = TimmViTTrunk(**tiny(family), out_indices=(3,)).eval()
    patch = trunk.patch_size[0]
    x = torch.randn(2, 3, 5 * patch, 6 * patch)
    with torch.no_grad():
        seq = trunk.embed(x)
        tokens = trunk.run_blocks(trunk.run_blocks(seq, 0, 1), 1, 4).tokens
        ref = trunk.model.forward_intermediates(x, indices=[3], intermediates_only=True, output_fmt='NLC',
                                                return_prefix_tokens=True)[0]
    expected = torch.cat([ref[1], ref[0]], dim=1) if trunk.num_prefix_tokens else ref
    assert seq.grid == (5, 6) and seq.num_prefix_tokens == trunk.num_prefix_tokens
    assert torch.equal(tokens, expected)
    assert tokens_to_maps(tokens[:, seq.num_prefix_tokens:], [seq.grid])[0].shape == (2, 64, 5, 6)


def test_dropped_prefix_tokens_leave_patch_tokens_with_their_position():
    trunk = TimmViTTrunk(**tiny('vit'), out_indices=(3,)).eval()
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        with_cls = trunk.embed(x).tokens
        trunk.drop_prefix_tokens()
        without = trunk.embed(x)
    assert 'cls_token' not in dict(trunk.named_parameters(prefix='')).keys() | set(trunk.model.state_dict())
    assert without.num_prefix_tokens == 0 and torch.equal(without.tokens, with_cls[:, 1:])
    with pytest.raises(RuntimeError, match='drop_prefix_tokens'):
        trunk(x)


# ----------------------------------------------------------------------------- mmseg training
@requires_mmseg
def test_upernet_vit_adapter_trains_through_the_mmengine_runner(tmp_path):
    """A few iterations of UperNet + ViTAdapter (our Small config, shrunk) with mmengine's Runner
    on random images: losses finite, the spatial prior, the ViT and the injector's gamma updated,
    the official layer decay (blocks.i: 0.95 ** (L - i), embeddings 0.95 ** (L + 1), adapter 1)."""
    import numpy as np
    from mmcv import imwrite
    from mmengine.config import Config
    from mmengine.runner import Runner

    for split in ('img', 'ann'):
        (tmp_path / 'data' / split).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        imwrite(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), str(tmp_path / 'data' / 'img' / f'{i}.png'))
        imwrite(rng.integers(0, 3, (48, 64), dtype=np.uint8), str(tmp_path / 'data' / 'ann' / f'{i}.png'))
    cfg = Config.fromfile('configs/vit_adapter/upernet_vit-adapter-s-deit_8xb2-160k_ade20k-512x512.py')
    cfg.model.data_preprocessor.size = (48, 64)
    cfg.model.backbone.update(tiny('vit'), conv_inplane=16, deform_num_heads=4, interaction_indexes=None,
                              drop_path_rate=0.1)
    cfg.model.decode_head.update(in_channels=[64] * 4, channels=16, num_classes=3)
    cfg.model.auxiliary_head.update(in_channels=64, channels=8, num_classes=3)
    cfg.model.test_cfg = dict(mode='whole')
    cfg.train_dataloader = dict(
        batch_size=2, num_workers=0, persistent_workers=False,
        sampler=dict(type='InfiniteSampler', shuffle=True),
        dataset=dict(type='BaseSegDataset', data_root=str(tmp_path / 'data'), metainfo=dict(classes=('a', 'b', 'c')),
                     data_prefix=dict(img_path='img', seg_map_path='ann'), img_suffix='.png', seg_map_suffix='.png',
                     pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='PackSegInputs')]))
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=3, val_interval=100)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=3)]
    cfg.optim_wrapper.optimizer.lr = 1e-3  # the config's AdamW with layer decay 0.95
    cfg.default_hooks = dict(logger=dict(type='LoggerHook', interval=1), timer=dict(type='IterTimerHook'),
                             param_scheduler=dict(type='ParamSchedulerHook'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.randomness = dict(seed=0)
    cfg.launcher = 'none'
    runner = Runner.from_cfg(cfg)
    backbone = runner.model.backbone
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    runner.train()
    after = backbone.state_dict()
    for key in ('spm.stem.0.weight', 'trunk.model.blocks.0.attn.qkv.weight', 'level_embed.weight',
                'interactions.3.extra_extractors.1.ffn.fc2.weight', 'interactions.0.injector.gamma'):
        assert not torch.equal(before[key], after[key]), key
    scales = {name: g['lr_scale'] for g in runner.optim_wrapper.optimizer.param_groups
              for name in g['param_names']}
    assert scales['backbone.trunk.model.blocks.0.attn.qkv.weight'] == pytest.approx(0.95 ** 4)
    assert scales['backbone.trunk.model.blocks.3.attn.qkv.weight'] == pytest.approx(0.95)
    assert scales['backbone.trunk.model.pos_embed'] == pytest.approx(0.95 ** 5)
    assert scales['backbone.spm.stem.0.weight'] == scales['backbone.interactions.0.injector.gamma'] == 1.0
    logs = runner.message_hub.get_scalar('train/loss').data[0]
    assert all(math.isfinite(v) for v in logs)
