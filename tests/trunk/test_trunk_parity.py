"""The trunk returns exactly what timm's own forward_intermediates returns, for every family."""
import pytest
import timm
import torch

from vitadapter import TimmViTTrunk, ViTPyramid

from conftest import FAMILIES, TINY, tiny


def timm_reference(trunk: TimmViTTrunk, name: str, **extra) -> torch.nn.Module:
    """A separately built timm model carrying the trunk's weights."""
    ref = timm.create_model(name, num_classes=0, img_size=64, dynamic_img_size=True, **TINY, **extra)
    missing, unexpected = ref.load_state_dict(trunk.model.state_dict(), strict=False)
    assert not unexpected
    # the trunk pruned what it does not use: the final norm (norm=False) and the head
    assert all(k.startswith(('norm.', 'fc_norm.', 'head', 'attn_pool.')) for k in missing), missing
    return ref.eval()


def input_for(patch: int, scale: float = 1.0) -> torch.Tensor:
    """Images whose sides are whole patches (5x6 patches at scale 1: position embeddings must be
    interpolated from the 64x64 ones)."""
    return torch.randn(2, 3, int(5 * patch * scale), int(6 * patch * scale))


@pytest.mark.parametrize('family', sorted(FAMILIES))
@pytest.mark.parametrize('norm', [False, True])
def test_block_maps_equal_timm_forward_intermediates(family, norm):
    name, extra = FAMILIES[family]
    cfg = tiny(family)
    trunk = TimmViTTrunk(**cfg, out_indices=(0, 2, 3), norm=norm).eval()
    ref = timm_reference(trunk, name, **extra)
    patch = trunk.patch_size[0]
    for x in (input_for(patch), input_for(patch, 2)):
        with torch.no_grad():
            ours = trunk(x).maps
            theirs = ref.forward_intermediates(x, indices=[0, 2, 3], norm=norm, intermediates_only=True)
        assert len(ours) == 3
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape == (2, 64, x.shape[2] // patch, x.shape[3] // patch)
            assert torch.equal(a, b), f'{family}: max diff {(a - b).abs().max()}'


@pytest.mark.parametrize('family', [f for f in sorted(FAMILIES) if '14' not in FAMILIES[f][0]])
def test_stride16_level_is_the_block_map(family):
    """With the channel-keeping pyramid and patch 16, the stride-16 level is the block's map."""
    name, extra = FAMILIES[family]
    model = ViTPyramid(**tiny(family), out_indices=(0, 1, 2, 3), pyramid='feature2pyramid').eval()
    ref = timm_reference(model.trunk, name, **extra)
    x = input_for(16)
    with torch.no_grad():
        levels = model(x)
        block2 = ref.forward_intermediates(x, indices=[2], intermediates_only=True)[0]
    assert model.feature_info.reduction()[2] == 16
    assert torch.equal(levels[2], block2)


@pytest.mark.parametrize('family', sorted(FAMILIES))
@pytest.mark.parametrize('pyramid', ['feature2pyramid', 'simple'])
def test_shapes_follow_feature_info_and_gradients_flow(family, pyramid):
    model = ViTPyramid(**tiny(family), pyramid=pyramid, out_channels=32 if pyramid == 'simple' else None)
    x = torch.randn(2, 3, 96, 80)
    levels = model(x)
    info = model.feature_info
    assert len(levels) == len(info.channels()) == 4
    for y, c, s in zip(levels, info.channels(), info.reduction()):
        assert y.shape == (2, c, -(-96 // s), -(-80 // s))
    sum(y.float().pow(2).mean() for y in levels).backward()
    trunk = model.trunk.model
    for module in (trunk.patch_embed, trunk.blocks[0], trunk.blocks[-1], model.neck):
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), type(module).__name__
        assert sum(g.abs().sum() for g in grads) > 0


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_embed_assembles_the_tokens_as_timm_does(family):
    """The trunk assembles its tokens once (embed: patch embedding, prefix tokens, position
    embedding by the trunk's rule or rotary embedding, pre-norm); with timm's rule that is exactly
    timm's own _pos_embed (which tokens the position embedding covers, class/register order,
    pos_drop) and norm_pre, at the stored grid and at another one."""
    trunk = TimmViTTrunk(**tiny(family), out_indices=(0,)).eval()
    model = trunk.model
    patch = trunk.patch_size[0]
    for rows, cols in ((5, 6), (64 // patch, 64 // patch)):
        x = torch.randn(2, 3, rows * patch, cols * patch)
        with torch.no_grad():
            seq = trunk.embed(x)
            theirs = model._pos_embed(model.patch_embed(x))
            theirs, rope = theirs if isinstance(theirs, tuple) else (theirs, None)  # Eva: (x, rope)
            theirs = model.norm_pre(theirs)
        assert seq.grid == (rows, cols) and seq.num_prefix_tokens == trunk.num_prefix_tokens
        torch.testing.assert_close(seq.tokens, theirs, rtol=0, atol=0)
        if rope is not None:
            torch.testing.assert_close(seq.block_kwargs['rope'], rope, rtol=0, atol=0)
