"""Prefix tokens (class / registers), class-token output, freezing, grad checkpointing."""
import pytest
import torch
import torch.nn.functional as F

from vitadapter import TimmViTTrunk, ViTPyramid

from conftest import assert_same_gradients, gradients, tiny


def reference_tokens(trunk: TimmViTTrunk, x: torch.Tensor, indices):
    """timm's own (patch map, prefix tokens) for the trunk's model."""
    return trunk.model.forward_intermediates(x, indices=indices, return_prefix_tokens=True,
                                             intermediates_only=True)


@pytest.mark.parametrize('family', ['vit', 'dinov2_reg'])
def test_prefix_modes(family):
    patch = 14 if '14' in tiny(family)['model_name'] else 16
    # float64: 'project' computes Linear(concat(patch, cls)) as two products (the class half once per
    # image), another summation order than the Linear below
    x = torch.randn(2, 3, 5 * patch, 4 * patch, dtype=torch.float64)
    trunks = {mode: TimmViTTrunk(**tiny(family), out_indices=(1, 3), prefix_tokens=mode).double().eval()
              for mode in ('ignore', 'add', 'project')}
    state = trunks['ignore'].model.state_dict()
    for t in trunks.values():
        t.model.load_state_dict(state)
    with torch.no_grad():
        ref = reference_tokens(trunks['ignore'], x, [1, 3])
        out = {mode: t(x) for mode, t in trunks.items()}
    for k, (patch_map, prefix) in enumerate(ref):
        cls = prefix[:, 0]
        assert torch.equal(out['ignore'].maps[k], patch_map)
        assert torch.equal(out['ignore'].class_tokens[k], cls)
        # add = ignore + the class token broadcast over every position
        assert torch.equal(out['add'].maps[k], patch_map + cls[:, :, None, None])
        # project = GELU(Linear(concat(patch, cls))), DPT's readout
        lin = trunks['project'].readout.projects[k]
        tokens = patch_map.flatten(2).transpose(1, 2)  # (B, N, C)
        cat = torch.cat([tokens, cls[:, None].expand_as(tokens)], dim=-1)
        expected = F.gelu(lin(cat)).transpose(1, 2).reshape(patch_map.shape)
        # one reduction of 2C = 128 terms in another order: at most 2 * 128 * u (u = 1.1e-16) of
        # the sum of the terms' magnitudes, <= sqrt(128) = 11 times the output's scale for random
        # weights: 3.2e-13; GELU (slope <= 1.13) keeps it so
        error = (out['project'].maps[k] - expected).abs().max() / expected.abs().max()
        assert error <= 1e-12, error
    assert not torch.allclose(out['add'].maps[0], out['ignore'].maps[0])
    assert not torch.allclose(out['project'].maps[0], out['add'].maps[0])


def test_register_tokens_are_split_off_never_patches():
    trunk = TimmViTTrunk(**tiny('dinov2_reg'), out_indices=(3,)).eval()
    assert trunk.num_register_tokens == 4 and trunk.num_prefix_tokens == 5
    x = torch.randn(1, 3, 56, 70)
    with torch.no_grad():
        out = trunk(x)
        tokens = trunk.model.forward_intermediates(x, indices=[3], output_fmt='NLC',
                                                   intermediates_only=True, return_prefix_tokens=False)[0]
    # timm's layout: [class, reg x4, patches]; maps hold exactly the 4 x 5 patches
    assert out.maps[0].shape == (1, 64, 4, 5)
    assert torch.equal(out.maps[0].flatten(2).transpose(1, 2), tokens)
    assert out.register_tokens[0].shape == (1, 4, 64)
    full = trunk.model.forward_intermediates(x, indices=[3], return_prefix_tokens=True,
                                             intermediates_only=True)[0][1]
    assert torch.equal(out.class_tokens[0], full[:, 0])
    assert torch.equal(out.register_tokens[0], full[:, 1:])


def test_no_class_token_model_refuses_readout():
    with pytest.raises(ValueError, match="has none; use prefix_tokens='ignore'"):
        TimmViTTrunk(**tiny('siglip'), prefix_tokens='add')
    with pytest.raises(ValueError, match='no class token'):
        ViTPyramid(**tiny('siglip'), output_cls_token=True)
    with pytest.raises(ValueError, match='not one of'):
        TimmViTTrunk(**tiny('vit'), prefix_tokens='concat')


def test_output_cls_token_follows_mmseg_convention():
    model = ViTPyramid(**tiny('vit'), output_cls_token=True).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        outs = model(x)
        cls_ref = model.trunk(x).class_tokens
    assert len(outs) == 4
    for (level, cls), c_ref, ch in zip(outs, cls_ref, model.feature_info.channels()):
        assert level.shape[:2] == (2, ch) and cls.shape == (2, 64)
        assert torch.equal(cls, c_ref)


def trainable(module):
    return {n for n, p in module.named_parameters() if p.requires_grad}


def test_freeze_trunk_keeps_only_neck_trainable():
    model = ViTPyramid(**tiny('vit', drop_path_rate=0.5), freeze_trunk=True)
    model.train()
    assert all(n.startswith('neck.') for n in trainable(model))
    assert trainable(model.neck) and not trainable(model.trunk)
    assert not model.trunk.model.training and model.neck.training  # no drop path in a frozen trunk
    x = torch.randn(1, 3, 64, 64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    sum(y.mean() for y in model(x)).backward()
    opt.step()
    after = model.state_dict()
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith('neck.') for k in changed)


def test_frozen_stages():
    model = ViTPyramid(**tiny('vit'), frozen_stages=2).train()
    names = trainable(model.trunk.model)
    assert not any(n.startswith(('patch_embed.', 'blocks.0.', 'blocks.1.')) for n in names)
    assert 'pos_embed' not in names and 'cls_token' not in names
    assert any(n.startswith('blocks.2.') for n in names)
    assert not model.trunk.model.blocks[1].training and model.trunk.model.blocks[2].training
    with pytest.raises(ValueError, match='frozen_stages=9'):
        ViTPyramid(**tiny('vit'), frozen_stages=9)


def test_grad_checkpointing_gives_the_same_gradients(monkeypatch):
    import torch.utils.checkpoint
    x = torch.randn(2, 3, 64, 48, dtype=torch.float64)
    grads, recomputed = [], []
    original = torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(torch.utils.checkpoint, 'checkpoint',
                        lambda fn, *a, **k: recomputed.append(type(fn).__name__) or original(fn, *a, **k))
    for ckpt in (False, True):
        torch.manual_seed(0)
        model = ViTPyramid(**tiny('eva02'), grad_checkpointing=ckpt).double()
        assert model.trunk.grad_checkpointing == ckpt and model.neck.grad_checkpointing == ckpt
        sum(y.pow(2).mean() for y in model(x)).backward()
        grads.append(gradients(model))
    # with it: every block and the 4x level of the pyramid (deconv, norm, GELU, deconv) are
    # recomputed; the 2x level is one deconvolution, whose only saved input is the block map
    assert recomputed.count('Sequential') == 1 and len(recomputed) == 1 + len(model.trunk.model.blocks)
    assert_same_gradients(*grads)
