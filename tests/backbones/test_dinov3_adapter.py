"""DINOv3Adapter: the DINOv3 segmentation adapter on a frozen trunk (extractors only),
and what a frozen trunk costs in training (ViTPyramid too): no gradient, no stored activation.

Every model is a real timm family shrunk to width 64 (DINOv3: ``vit_small_patch16_dinov3``, patch
16, RoPE, 1 class + 4 register tokens, layer scale)."""
import pytest
import torch

from vitadapter import DINOv3Adapter, TimmViTTrunk, ViTAdapter, ViTPyramid
from vitadapter.backbones.dinov3_adapter import DINOV3_DEFAULTS, dinov3_trunk_layers
from vitadapter.necks.adapter import InteractionBlock

from conftest import assert_same_gradients, ceil_sizes, FAMILIES, gradients, requires_timm_dinov3, saved_by_autograd

# built on DINOv3 (timm >= 1.0.20): skipped on the oldest supported timm, which has none; the other
# lanes run them
pytestmark = requires_timm_dinov3

DINOV3 = 'vit_small_patch16_dinov3'
SMALL = dict(embed_dim=64, num_heads=2, img_size=64)
STRIDES = (4, 8, 16, 32)


def frozen_adapter(depth=4, model_name=DINOV3, **overrides):
    """The extractor-only adapter on a tiny frozen trunk (4 deformable heads: 64 * 0.5 / 4 = 8
    channels each)."""
    kwargs = dict(model_name=model_name, depth=depth, **SMALL, conv_inplane=16, deform_num_heads=4,
                  drop_path_rate=0.0)
    return DINOv3Adapter(**{**kwargs, **overrides})


# ----------------------------------------------------------------------------- building, shapes
def test_builds_on_dinov3_with_extractors_only():
    model = frozen_adapter().train()
    assert model.trunk_layers == [0, 1, 2, 3]
    assert all(i.injector is None for i in model.interactions)
    assert [len(i.extra_extractors) for i in model.interactions] == [0, 0, 0, 2]
    attn = model.interactions[0].extractor.attn
    assert attn.num_heads == 4 and attn.value_dim == 64 * DINOV3_DEFAULTS['deform_ratio'] == 32
    assert not model.trunk.model.training and model.spm.training  # the frozen trunk stays in eval
    assert not any(p.requires_grad for p in model.trunk.parameters())
    info = model.feature_info
    assert info.channels() == [64] * 4 and info.reduction() == list(STRIDES)
    assert info.module_name() == [f'output.norms.{i}' for i in range(4)]
    assert [d['block'] for d in info.get_dicts()] == [0, 1, 2, 3]
    for size in [(64, 64), (45, 77)]:
        levels = model(torch.randn(2, 3, *size))
        assert [tuple(y.shape) for y in levels] == [(2, 64, h, w) for h, w in ceil_sizes(size)]
        assert model.output_sizes(size) == ceil_sizes(size)


def test_dinov3_defaults_and_layers():
    """The official defaults: 16 heads, value ratio 0.5; blocks [2, 5, 8, 11] of 12 and the
    paper's [4, 11, 17, 23] of 24. The blocks after the last taken one are pruned, the norm kept."""
    assert dinov3_trunk_layers(12) == [2, 5, 8, 11] and dinov3_trunk_layers(40) == [9, 19, 29, 39]
    with torch.device('meta'):
        s = DINOv3Adapter(model_name=DINOV3)
        large = DINOv3Adapter(model_name=DINOV3, depth=24)
        few = DINOv3Adapter(model_name=DINOV3, trunk_layers=[1, 3, 5, 7])
    assert s.trunk_layers == [2, 5, 8, 11] and large.trunk_layers == [4, 11, 17, 23]
    assert s.interactions[0].extractor.attn.num_heads == 16
    assert s.interactions[0].extractor.attn.value_dim == 384 // 2
    assert len(few.trunk.model.blocks) == 8 and isinstance(few.trunk.model.norm, torch.nn.LayerNorm)
    assert [d['block'] for d in few.feature_info.get_dicts()] == [1, 3, 5, 7]


# ----------------------------------------------------------------------------- the trunk, unaltered
@pytest.mark.parametrize('family', ['dinov3', 'dinov2_reg'])
def test_trunk_features_equal_the_trunk_run_alone_bitwise(family):
    """The extractors read exactly what the trunk computes alone (final norm on the taken blocks),
    before and after a training step: nothing is injected and nothing in the trunk trains. DINOv2
    (patch 14, absolute positions) checks that the adapter's position rule reaches the trunk."""
    name = DINOV3 if family == 'dinov3' else FAMILIES[family][0]
    rule = None if family == 'dinov3' else 'bicubic'
    model = frozen_adapter(model_name=name, trunk_layers=[0, 2, 3, 5], depth=6, pos_embed_interp=rule)
    alone = TimmViTTrunk(name, out_indices=[0, 2, 3, 5], depth=6, **SMALL, norm=True, freeze_trunk=True,
                         pos_embed_interp=rule)
    alone.load_state_dict(model.trunk.state_dict())
    x = torch.randn(2, 3, 50, 70)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2,
                                  weight_decay=0.1)
    for _ in range(2):
        model.train()
        with torch.no_grad():
            expected = alone(x).maps
        got = model.trunk_features(x)
        assert len(got) == 4 and all(torch.equal(a, b) for a, b in zip(got, expected))
        optimizer.zero_grad()
        sum(y.pow(2).mean() for y in model(x)).backward()
        optimizer.step()


def test_no_trunk_gradient_and_no_trunk_activation():
    """In train mode the trunk's outputs carry no graph, its parameters get no gradient, and what
    autograd stores for the backward pass does not depend on the trunk's depth (4 vs 8 blocks):
    the trunk costs no activation memory. With a trainable trunk (the full adapter) it does."""
    x = torch.randn(2, 3, 64, 64)
    model = frozen_adapter().train()
    maps = model.trunk_features(x)
    assert all(not m.requires_grad and m.grad_fn is None for m in maps)
    sum(y.pow(2).mean() for y in model(x)).backward()
    assert all(p.grad is None for p in model.trunk.parameters())
    assert all(p.grad is not None for n, p in model.named_parameters() if not n.startswith('trunk.'))
    shallow = saved_by_autograd(frozen_adapter(depth=4, trunk_layers=[0, 1, 2, 3]).train(), x)
    deep = saved_by_autograd(frozen_adapter(depth=8, trunk_layers=[1, 3, 5, 7]).train(), x)
    assert shallow == deep
    full = dict(model_name=DINOV3, **SMALL, conv_inplane=16, deform_num_heads=4, with_cls_token=True)
    trainable = [saved_by_autograd(ViTAdapter(depth=d, **full).train(), x)[0] for d in (4, 8)]
    assert trainable[1] > trainable[0]


@pytest.mark.parametrize('readout', ['ignore', 'project'])
def test_vit_pyramid_frozen_trunk_stores_no_activation(readout):
    """ViTPyramid(freeze_trunk=True): the same, with the class-token readout inside or outside the
    trainable part ('project' trains a Linear on the trunk's outputs)."""
    x = torch.randn(2, 3, 64, 64)

    def pyramid(depth, freeze):
        return ViTPyramid(DINOV3, depth=depth, **SMALL, prefix_tokens=readout, norm=True,
                          freeze_trunk=freeze).train()
    assert saved_by_autograd(pyramid(4, True), x) == saved_by_autograd(pyramid(8, True), x)
    assert saved_by_autograd(pyramid(8, False), x)[0] > saved_by_autograd(pyramid(4, False), x)[0]
    model = pyramid(4, True)
    sum(y.pow(2).mean() for y in model(x)).backward()
    assert all(p.grad is None for p in model.trunk.model.parameters())


# ----------------------------------------------------------------------------- weights, options
def test_loads_a_full_adapter_state_dict_where_keys_overlap():
    """Only the injectors' keys are unexpected; only the trunk's final norm (which the full adapter
    prunes) and, when the full adapter dropped them, the prefix tokens are missing."""
    common = dict(model_name=DINOV3, depth=4, **SMALL, conv_inplane=16, deform_num_heads=4,
                  deform_ratio=0.5)
    model = frozen_adapter()
    norm = ['trunk.model.norm.weight', 'trunk.model.norm.bias']
    prefix = ['trunk.model.cls_token', 'trunk.model.reg_token']
    for with_cls, missing in [(True, norm), (False, prefix + norm)]:
        full = ViTAdapter(**common, with_cls_token=with_cls)
        state = full.state_dict()
        result = model.load_state_dict(state, strict=False)
        assert sorted(result.missing_keys) == sorted(missing)
        assert result.unexpected_keys and all('.injector.' in k for k in result.unexpected_keys)
        assert sorted(result.unexpected_keys) == sorted(k for k in state if '.injector.' in k)
        own = model.state_dict()
        assert all(torch.equal(own[k], v) for k, v in state.items() if k in own)


def test_grad_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = frozen_adapter()
    ckpt = frozen_adapter(grad_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 48, 64, dtype=torch.float64)
    for m in (plain, ckpt):
        m.double().train()
        sum(y.pow(2).mean() for y in m(x)).backward()
    assert_same_gradients(gradients(plain), gradients(ckpt))
    # checkpointing recomputes the extractors: fewer tensors stored
    x = x[:1].float()
    assert saved_by_autograd(frozen_adapter(grad_checkpointing=True).train(), x)[0] < \
        saved_by_autograd(frozen_adapter().train(), x)[0]


@pytest.mark.parametrize('kwargs,message', [
    (dict(trunk_layers=[0, 1, 2, 4]), 'block 4 is out of range'),
    (dict(trunk_layers=[-1, 1, 2, 3]), 'block -1 is out of range'),
    (dict(trunk_layers=[0, 2, 1, 3]), 'strictly increasing'),
    (dict(trunk_layers=[0, 1, 1, 3]), 'strictly increasing'),
    (dict(trunk_layers=[]), 'non-empty list'),
    (dict(trunk_layers=3), 'non-empty list'),
    (dict(trunk_layers=[0, 1.0, 2, 3]), 'ints'),
    (dict(trunk_layers=[1, 3]), 'needs 4 interactions'),
    (dict(freeze_trunk=False), 'keep freeze_trunk=True'),
    (dict(grad_checkpointing='adapter'), 'True .recompute the extractors. or False'),
])
def test_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        frozen_adapter(**kwargs)


@pytest.mark.parametrize('kwargs', [dict(interaction_indexes=[[0, 1], [2, 3]]), dict(with_cls_token=False),
                                    dict(injectors=True)])
def test_the_full_adapters_options_name_the_class_they_belong_to(kwargs):
    with pytest.raises(TypeError, match='belongs to ViTAdapter'):
        frozen_adapter(**kwargs)
    with pytest.raises(TypeError, match='DINOv3Adapter'):  # and the full adapter points here
        ViTAdapter(model_name=DINOV3, depth=4, **SMALL, injectors=False)


def test_fewer_layers_without_vit_features():
    model = frozen_adapter(trunk_layers=[1, 3], add_vit_feature=False)
    levels = model(torch.randn(1, 3, 64, 64))
    assert len(model.interactions) == 2 and [tuple(y.shape[-2:]) for y in levels] == ceil_sizes((64, 64))
    assert [d['block'] for d in model.feature_info.get_dicts()] == [3] * 4


def test_a_trunk_unfrozen_after_construction_is_refused():
    model = frozen_adapter().train()
    model.trunk.model.blocks[0].requires_grad_(True)
    x = torch.randn(2, 3, 64, 64)
    with pytest.raises(RuntimeError, match='keep the trunk frozen'):
        model(x)
    with torch.no_grad():  # inference trains nothing: allowed
        model(x)
    with pytest.raises(RuntimeError, match='injector'):
        InteractionBlock(64, 4, injector=False)(None, None, None, None, None)
