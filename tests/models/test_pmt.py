"""PMT: EoMT's prediction on a frozen trunk run once, through a plain mask decoder."""
import pytest
import torch

from vitadapter.models import PMT

from conftest import HAS_TIMM_DINOV3, requires_timm_dinov3, saved_by_autograd, tiny

# the decoder's rotary embedding is timm's DINOv3 one (timm >= 1.0.20)
pytestmark = requires_timm_dinov3
K, Q = 5, 6


def tiny_pmt(family='dinov3', depth=4, **overrides):
    kwargs = tiny(family, depth=depth) if HAS_TIMM_DINOV3 else {}
    return PMT(**{**kwargs, **dict(num_classes=K, num_queries=Q, num_decoder_layers=2), **overrides})


@pytest.mark.parametrize('family', ['dinov3', 'dinov2_reg', 'vit'])
def test_predicts_from_a_frozen_trunk_of_any_family(family):
    model = tiny_pmt(family).train()
    assert not any(p.requires_grad for p in model.trunk.parameters())
    assert not model.trunk.model.training  # frozen: eval behaviour, no drop path
    assert model.trunk.block_indices == (0, 1, 2, 3) and len(model.laterals) == 4
    x = torch.randn(2, 3, 50, 70)
    out = model(x)
    patch = model.trunk.patch_size[0]
    grid = (-(-50 // patch), -(-70 // patch))
    up = 4 if patch == 16 else 2
    assert len(out.mask_logits) == 3 and out.mask_logits[-1].shape == (2, Q, grid[0] * up, grid[1] * up)
    assert out.class_logits[-1].shape == (2, Q, K + 1)
    sum(m.mean() for m in out.mask_logits).backward()
    assert all(p.grad is None for p in model.trunk.parameters())
    assert model.laterals[0].mlp[0].weight.grad is not None and model.decoder[0].attn.qkv.weight.grad is not None


def test_the_trunk_stores_no_activation():
    """What autograd keeps for the backward pass does not depend on the frozen trunk's depth."""
    x = torch.randn(1, 3, 64, 64)
    shallow = saved_by_autograd(tiny_pmt(depth=4, trunk_layers=[0, 1, 2, 3]).train(), x)
    deep = saved_by_autograd(tiny_pmt(depth=8, trunk_layers=[1, 3, 5, 7]).train(), x)
    assert shallow == deep


def test_one_trunk_pass_serves_the_decoder():
    """The taken blocks come from one pass of the trunk (its blocks run once each)."""
    model = tiny_pmt().eval()
    runs = []
    for block in model.trunk.blocks:
        block.register_forward_hook(lambda *_: runs.append(1))
    model.set_mask_probabilities([0.0, 0.0])
    with torch.no_grad():
        scores = model.semantic_segmentation(torch.randn(1, 3, 64, 48))
    assert len(runs) == 4 and scores.shape == (1, K, 64, 48)


def test_errors():
    with pytest.raises(ValueError, match='at least one decoder layer'):
        tiny_pmt(num_decoder_layers=0)
    with pytest.raises(ValueError, match='2 masked blocks; got 6'):
        tiny_pmt().set_mask_probabilities([1.0] * 6)
