"""DINOv3 (timm's ``vit_*_patch16_dinov3[_qkvb]``) as a trunk: every published size, parity with timm's
own ``forward_intermediates`` at native, odd, non-square and non-multiple sizes, the 1 class + 4
register tokens in every readout mode, ``output_cls_token``, grad checkpointing and freezing.

Tiny widths and depths (timm's own keyword overrides) keep the real architecture: RoPE (base 100,
rotate-half), layer scale, registers, no absolute position embedding, SwiGLU for H+ and 7B.
"""
import pytest
import timm
import torch
import torch.nn.functional as F

from vitadapter import TimmViTTrunk, ViTPyramid
from vitadapter.info import supported_models
from vitadapter.meta_build import build_structure

from conftest import assert_same_gradients, gradients, requires_timm_dinov3, TINY

pytestmark = requires_timm_dinov3

# the published models (facebookresearch/dinov3): name -> (width, depth, SwiGLU MLP)
DINOV3 = {
    'vit_small_patch16_dinov3': (384, 12, False),
    'vit_small_plus_patch16_dinov3': (384, 12, True),
    'vit_base_patch16_dinov3': (768, 12, False),
    'vit_large_patch16_dinov3': (1024, 24, False),
    'vit_huge_plus_patch16_dinov3': (1280, 32, True),
    'vit_7b_patch16_dinov3': (4096, 40, True),
}
# timm also has each size but 7B with q/v biases (``_qkvb``): the layout of the official files
# whose biases are not all zero
QKVB = [name + '_qkvb' for name in DINOV3 if '7b' not in name]
# one per kind of block: plain MLP, SwiGLU MLP, MLP with q/v biases
VARIANTS = ['vit_small_patch16_dinov3', 'vit_huge_plus_patch16_dinov3', 'vit_base_patch16_dinov3_qkvb']


def tiny_dinov3(name: str, **overrides) -> dict:
    return dict(dict(model_name=name, img_size=64, **TINY), **overrides)


def test_every_published_size_is_listed():
    listed = set(supported_models('*dinov3*'))
    assert set(DINOV3) | set(QKVB) <= listed


@pytest.mark.parametrize('name', list(DINOV3) + QKVB)
def test_every_size_builds_with_its_prefix_tokens(name):
    """Built on the meta device (no memory: the 7B trunk has 6.7 B parameters)."""
    width, depth, swiglu = DINOV3[name.replace('_qkvb', '')]
    model = build_structure(lambda: ViTPyramid(name))
    trunk = model.trunk
    assert (trunk.embed_dim, trunk.num_blocks, trunk.patch_size) == (width, depth, (16, 16))
    assert trunk.num_prefix_tokens == 5 and trunk.has_class_token and trunk.num_register_tokens == 4
    assert model.feature_info.reduction() == [4, 8, 16, 32]
    assert model.feature_info.channels() == [width // 4, width // 2, width, width]
    # four evenly spaced blocks, the last one last
    assert trunk.block_indices[-1] == depth - 1 and len(trunk.block_indices) == 4
    mlp = trunk.model.blocks[0].mlp
    assert hasattr(mlp, 'fc1_g') == swiglu, type(mlp).__name__
    assert (trunk.model.blocks[0].attn.q_bias is not None) == name.endswith('_qkvb')


def timm_twin(trunk: TimmViTTrunk, name: str) -> torch.nn.Module:
    """A separately built timm model with the trunk's weights (the trunk pruned norm/head)."""
    ref = timm.create_model(name, num_classes=0, img_size=64, **TINY).eval()
    missing, unexpected = ref.load_state_dict(trunk.model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(('norm.', 'fc_norm.', 'head')) for k in missing), missing
    return ref


@pytest.mark.parametrize('name', VARIANTS)
@pytest.mark.parametrize('norm', [False, True])
def test_block_maps_equal_timm_forward_intermediates(name, norm):
    trunk = TimmViTTrunk(**tiny_dinov3(name), out_indices=(0, 2, 3), norm=norm).eval()
    ref = timm_twin(trunk, name)
    # native (the 4x4 grid of img_size), odd (5x7), non-square and not a multiple of 16 (75x101:
    # the trunk pads at the bottom/right to 80x112, as timm's dynamic padding would)
    for h, w in ((64, 64), (80, 112), (75, 101)):
        x = torch.randn(2, 3, h, w)
        with torch.no_grad():
            ours = trunk(x).maps
            padded = F.pad(x, (0, -w % 16, 0, -h % 16))
            theirs = ref.forward_intermediates(padded, indices=[0, 2, 3], norm=norm, intermediates_only=True)
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape == (2, 64, -(-h // 16), -(-w // 16))
            assert torch.equal(a, b), f'{name} at {h}x{w}: max diff {(a - b).abs().max()}'


@pytest.mark.parametrize('mode', ['ignore', 'add', 'project'])
def test_class_and_register_tokens_in_every_readout_mode(mode):
    trunk = TimmViTTrunk(**tiny_dinov3('vit_small_patch16_dinov3'), out_indices=(1, 3),
                         prefix_tokens=mode).eval()
    x = torch.randn(2, 3, 80, 48)
    with torch.no_grad():
        out = trunk(x)
        ref = trunk.model.forward_intermediates(x, indices=[1, 3], return_prefix_tokens=True,
                                                intermediates_only=True)
    for k, (patch_map, prefix) in enumerate(ref):
        assert prefix.shape == (2, 5, 64)  # [class, 4 registers]
        assert torch.equal(out.class_tokens[k], prefix[:, 0])
        assert torch.equal(out.register_tokens[k], prefix[:, 1:])
        if mode == 'ignore':  # the registers never reach the maps
            assert torch.equal(out.maps[k], patch_map)
        elif mode == 'add':
            assert torch.equal(out.maps[k], patch_map + prefix[:, 0, :, None, None])
        else:  # DPT's readout: GELU(Linear(concat(patch, class))), the registers left out
            assert out.maps[k].shape == patch_map.shape
            assert trunk.readout.projects[k].in_features == 2 * 64


def test_output_cls_token():
    model = ViTPyramid(**tiny_dinov3('vit_small_patch16_dinov3'), output_cls_token=True).eval()
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        outs = model(x)
        class_tokens = model.trunk(x).class_tokens
    assert len(outs) == 4
    for (level, cls), ref, channels in zip(outs, class_tokens, model.feature_info.channels()):
        assert level.shape[:2] == (2, channels) and torch.equal(cls, ref)


def test_grad_checkpointing_gives_the_same_gradients():
    x = torch.randn(2, 3, 48, 64, dtype=torch.float64)
    grads = []
    for ckpt in (False, True):
        torch.manual_seed(0)
        model = ViTPyramid(**tiny_dinov3('vit_small_patch16_dinov3'), grad_checkpointing=ckpt).double()
        assert model.trunk.grad_checkpointing == ckpt
        sum(y.pow(2).mean() for y in model(x)).backward()
        grads.append(gradients(model))
    assert 'trunk.model.reg_token' in grads[0]
    assert_same_gradients(*grads)  # (a wrong recomputation, RoPE or layer scale forgotten: order 1)


def test_freezing():
    model = ViTPyramid(**tiny_dinov3('vit_small_patch16_dinov3', drop_path_rate=0.3), freeze_trunk=True)
    model.train()
    assert not any(p.requires_grad for p in model.trunk.parameters())
    assert not model.trunk.model.training  # no drop path in a frozen trunk
    staged = ViTPyramid(**tiny_dinov3('vit_small_patch16_dinov3'), frozen_stages=2).train()
    trainable = {n for n, p in staged.trunk.model.named_parameters() if p.requires_grad}
    assert not trainable & {'cls_token', 'reg_token', 'patch_embed.proj.weight'}
    assert not any(n.startswith(('blocks.0.', 'blocks.1.')) for n in trainable)
    assert any(n.startswith('blocks.2.') for n in trainable)
    # the frozen trunk builds no autograd graph: its maps carry no history
    x = torch.randn(1, 3, 64, 64)
    assert all(m.grad_fn is None for m in model.trunk(x).maps)
