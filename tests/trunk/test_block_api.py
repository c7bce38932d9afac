"""The trunk's block API with extra tokens and attention masks (what EoMT runs on), for every family
the trunk supports, RoPE ones included (EVA-02, DINOv3): float64, exact up to the order of sums."""
import pytest
import torch

from vitadapter import TimmViTTrunk
from vitadapter.trunk import additive_mask

from conftest import FAMILIES, TINY, tiny

EPS64 = torch.finfo(torch.float64).eps


def trunk_for(family):
    return TimmViTTrunk(**tiny(family), out_indices=(3,), norm=True).double().eval()


def images(trunk, rows=3, cols=4):
    patch = trunk.patch_size[0]
    return torch.randn(2, 3, rows * patch, cols * patch, dtype=torch.float64)


def separating_mask(k: int, total: int) -> torch.Tensor:
    """(1, 1, T, T) bool: the first k tokens and the others do not see each other."""
    mask = torch.ones(1, 1, total, total, dtype=torch.bool)
    mask[..., :k, k:] = False
    mask[..., k:, :k] = False
    return mask


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_extra_tokens_walled_off_by_the_mask_leave_the_others_exactly(family):
    """Extra tokens in front, a mask that separates them from the rest: the prefix and patch
    tokens come out as without the extra tokens (their rotations, for RoPE, are untouched by the
    extra rows), and the extra tokens as if they ran alone."""
    trunk = trunk_for(family)
    x = images(trunk)
    k = 3
    extra = torch.randn(2, k, 64, dtype=torch.float64)
    with torch.no_grad():
        plain = trunk.run_blocks(trunk.embed(x), 0, 4)
        seq = trunk.add_tokens(trunk.embed(x), extra)
        assert seq.num_extra_tokens == k and seq.tokens.shape[1] == k + plain.tokens.shape[1]
        walled = trunk.run_blocks(seq, 0, 4, attn_mask=separating_mask(k, seq.tokens.shape[1]))
    scale = plain.tokens.abs().max()
    # float64 attention over a subset: the same sums, with the masked terms exactly zero
    assert (walled.tokens[:, k:] - plain.tokens).abs().max() <= 1e3 * EPS64 * scale
    assert torch.equal(walled.patch_map(), walled.patch_map(walled.tokens))
    assert walled.prefix.shape[1] == trunk.num_prefix_tokens and walled.extra.shape[1] == k


@pytest.mark.parametrize('family', ['vit', 'dinov3', 'eva02'])
def test_extra_tokens_carry_no_position(family):
    """Swapping two extra tokens swaps their outputs and changes nothing else: they have no
    position (no rotation under RoPE, no position embedding)."""
    if family not in FAMILIES:
        pytest.skip('this timm has no DINOv3')
    trunk = trunk_for(family)
    x = images(trunk)
    extra = torch.randn(2, 2, 64, dtype=torch.float64)
    with torch.no_grad():
        a = trunk.run_blocks(trunk.add_tokens(trunk.embed(x), extra), 0, 4).tokens
        b = trunk.run_blocks(trunk.add_tokens(trunk.embed(x), extra.flip(1)), 0, 4).tokens
    scale = a.abs().max()
    assert (a[:, [1, 0]] - b[:, :2]).abs().max() <= 1e3 * EPS64 * scale
    assert (a[:, 2:] - b[:, 2:]).abs().max() <= 1e3 * EPS64 * scale


def test_bool_and_additive_masks_agree_and_an_all_true_mask_is_none():
    trunk = trunk_for('vit')
    x = images(trunk)
    with torch.no_grad():
        seq = trunk.add_tokens(trunk.embed(x), torch.randn(4, 64, dtype=torch.float64))  # shared (K, C)
        total = seq.tokens.shape[1]
        mask = torch.rand(2, 1, total, total) > 0.3
        mask[..., torch.arange(total), torch.arange(total)] = True  # every token sees itself
        by_bool = trunk.run_blocks(seq, 0, 4, attn_mask=mask).tokens
        by_float = trunk.run_blocks(seq, 0, 4, attn_mask=additive_mask(mask, torch.float64)).tokens
        free = trunk.run_blocks(seq, 0, 4).tokens
        all_true = trunk.run_blocks(seq, 0, 4, attn_mask=torch.ones(1, 1, total, total, dtype=torch.bool)).tokens
    assert torch.equal(by_bool, by_float)
    assert (all_true - free).abs().max() <= 1e3 * EPS64 * free.abs().max()
    assert (by_bool - free).abs().max() > 1e-3  # the mask does something


def test_block_api_errors_name_the_fix():
    trunk = trunk_for('vit')
    seq = trunk.embed(images(trunk))
    with pytest.raises(ValueError, match=r'attn_mask must be \(B, heads or 1, 13, 13\)'):
        trunk.run_blocks(seq, 0, 1, attn_mask=torch.ones(1, 1, 12, 12, dtype=torch.bool))
    with pytest.raises(ValueError, match=r'extra tokens must be \(B, K, 64\)'):
        trunk.add_tokens(seq, torch.randn(2, 3, 32, dtype=torch.float64))
    beit = TimmViTTrunk('beit_base_patch16_224', img_size=64, **TINY, out_indices=(3,))
    with pytest.raises(ValueError, match='BEiT.*relative position bias'):
        beit.check_token_hooks(extra_tokens=True)
    with pytest.raises(ValueError, match='BEiT.*relative position bias'):
        beit.add_tokens(beit.embed(torch.randn(1, 3, 64, 64)), torch.randn(1, 2, 64))
    with pytest.raises(RuntimeError, match='final norm was pruned.*norm=True'):
        TimmViTTrunk(**tiny('vit'), out_indices=(3,)).final_norm(seq.tokens.float())


def test_eva_masks_without_fused_attention_need_a_recent_timm(monkeypatch):
    """timm's Eva attention read a mask as a key-padding mask on its non-fused path before
    1.0.20: with fused attention off there, a mask is refused rather than misread."""
    from vitadapter.trunk import timm_trunk
    trunk = trunk_for('eva02')
    seq = trunk.embed(images(trunk))
    total = seq.tokens.shape[1]
    for module in trunk.modules():
        if hasattr(module, 'fused_attn'):
            module.fused_attn = False
    mask = torch.ones(1, 1, total, total, dtype=torch.bool)
    if timm_trunk.timm_version() >= (1, 0, 20):
        trunk.run_blocks(seq, 0, 1, attn_mask=mask)  # this timm reads it right
        monkeypatch.setattr(timm_trunk, 'timm_version', lambda: (1, 0, 19))
    with pytest.raises(ValueError, match='key-padding mask before timm 1.0.20'):
        trunk.run_blocks(seq, 0, 1, attn_mask=mask)
