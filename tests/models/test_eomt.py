"""EoMT in plain PyTorch: every family the block API supports, any input size, masked attention,
its schedules, and the errors that name the fix."""
import pytest
import torch
import torch.nn.functional as F

from vitadapter.layers import query_attention_mask
from vitadapter.models import EoMT, MaskAnnealing, annealed_probability, semantic_scores, two_stage_warmup_poly

from conftest import FAMILIES, TINY, assert_same_gradients, gradients, tiny

K, Q = 5, 6


def tiny_eomt(family='vit', num_blocks=2, **overrides):
    return EoMT(**{**tiny(family), **dict(num_classes=K, num_queries=Q, num_blocks=num_blocks), **overrides})


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_every_family_predicts_at_any_size(family):
    """Masks at the patch grid upscaled by the scale blocks (patch 16: stride 4; patch 14: one
    block, stride 7), classes K + 1, one prediction per query block while training + the final."""
    model = tiny_eomt(family).train()
    patch = model.trunk.patch_size[0]
    x = torch.randn(2, 3, 50, 70)
    out = model(x)
    grid = (-(-50 // patch), -(-70 // patch))
    up = 4 if patch == 16 else 2
    assert len(out.mask_logits) == len(out.class_logits) == 3
    assert all(m.shape == (2, Q, grid[0] * up, grid[1] * up) for m in out.mask_logits)
    assert all(c.shape == (2, Q, K + 1) for c in out.class_logits)
    sum(m.mean() for m in out.mask_logits).backward()
    assert model.queries.weight.grad is not None and model.head.class_head.weight.grad is None
    model.eval().set_mask_probabilities([0.0, 0.0])
    with torch.no_grad():
        final = model(x)
        scores = model.semantic_segmentation(x)
    assert len(final.mask_logits) == 1 and scores.shape == (2, K, 50, 70)


def test_inference_runs_the_plain_vit_and_one_prediction():
    """With the probabilities at 0, eval runs no mask and no intermediate prediction: the head
    runs once. With a probability above 0 it still masks (the model is mid-annealing)."""
    model = tiny_eomt().eval()
    calls = []
    model.head.register_forward_hook(lambda *_: calls.append(1))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        model.set_mask_probabilities([0.0, 0.0])
        model(x)
        assert len(calls) == 1
        model.set_mask_probabilities([0.0, 0.5])
        assert len(model(x).mask_logits) == 2 and len(calls) == 3


def test_semantic_scores_meet_at_mask_resolution_then_resize():
    cls = torch.randn(2, Q, K + 1, dtype=torch.float64)
    masks = torch.randn(2, Q, 8, 6, dtype=torch.float64)
    scores = semantic_scores(cls, masks)
    expected = torch.einsum('bqk,bqhw->bkhw', cls.softmax(-1)[..., :-1], masks.sigmoid())
    # a sum of Q products in [0, 1], at most Q in all: Q * Q * eps bounds any summation order
    bound = Q * Q * torch.finfo(torch.float64).eps
    assert scores.is_contiguous(memory_format=torch.channels_last)
    assert (scores - expected).abs().max() <= bound
    resized = semantic_scores(cls, masks, (32, 24))
    # bilinear weights sum to 1: the resize keeps the bound
    reference = F.interpolate(expected, (32, 24), mode='bilinear', align_corners=False)
    assert resized.shape == reference.shape and (resized - reference).abs().max() <= 2 * bound


def test_an_odd_size_is_padded_to_whole_patches_and_cropped_back():
    model = tiny_eomt().eval()
    model.set_mask_probabilities([0.0, 0.0])
    x = torch.randn(1, 3, 37, 45)  # 3 x 3 patches of 16 cover 48 x 48
    with torch.no_grad():
        out = model(x)
        scores = model.semantic_segmentation(x)
    assert model.padded_size((37, 45)) == (48, 48) and out.mask_logits[-1].shape[-2:] == (12, 12)
    full = semantic_scores(out.class_logits[-1], out.mask_logits[-1], (48, 48))
    assert torch.equal(scores, full[..., :37, :45])


def test_query_attention_mask_blocks_query_to_patch_outside_the_mask():
    grid, prefix = (2, 3), 1
    logits = torch.full((1, 2, 4, 6), -1.0)
    logits[0, 0, :2, :3] = 1.0  # query 0: the top-left patch (and its neighbours after resizing)
    mask = query_attention_mask(logits, grid, prefix)
    total = 2 + prefix + 6
    assert mask.shape == (1, 1, total, total) and mask.dtype == torch.bool
    inside = F.interpolate(logits, grid, mode='bilinear', align_corners=False).flatten(2) > 0
    assert torch.equal(mask[0, 0, :2, 3:], inside[0])
    assert not inside[0, 1].any() and inside[0, 0].any()
    rest = mask.clone()
    rest[0, 0, :2, 3:] = True
    assert rest.all()  # everything else attends freely: queries, prefix, patches
    assert query_attention_mask(logits, grid, prefix, keep_probability=0.0).all()  # annealed away


def test_annealing_releases_queries_with_the_probability_per_image_and_query():
    logits = torch.full((4, 500, 2, 2), -1.0)  # every query masked from every patch
    generator = torch.Generator().manual_seed(0)
    mask = query_attention_mask(logits, (2, 2), 0, keep_probability=0.3, generator=generator)
    released = mask[:, 0, :500, 500:].all(-1)  # (B, Q): queries that see every patch again
    # each query is released with probability 0.7, independently: 2000 draws, 5 standard deviations
    assert abs(released.float().mean().item() - 0.7) < 5 * (0.7 * 0.3 / 2000) ** 0.5
    again = query_attention_mask(logits, (2, 2), 0, 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)


def test_masked_attention_cuts_the_queries_off_the_patches_outside_their_masks():
    """A query whose mask covers no patch (probability 1) sees only queries and prefix tokens: its
    next output does not change when the patch tokens do."""
    model = tiny_eomt(num_blocks=1).double().train()
    trunk = model.trunk
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    seq = trunk.add_tokens(trunk.embed(x), model.queries.weight)
    logits = torch.full((1, Q, 16, 16), -1.0, dtype=torch.float64)
    mask = query_attention_mask(logits, seq.grid, seq.num_prefix_tokens)
    first = trunk.run_blocks(seq, 3, 4, attn_mask=mask).tokens
    changed = seq.tokens.clone()
    changed[:, Q + seq.num_prefix_tokens:] += torch.randn_like(changed[:, Q + seq.num_prefix_tokens:])
    second = trunk.run_blocks(seq.with_tokens(changed), 3, 4, attn_mask=mask).tokens
    assert torch.equal(first[:, :Q], second[:, :Q])
    assert not torch.allclose(first[:, Q:], second[:, Q:])


def test_grad_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = tiny_eomt().double().train()
    ckpt = tiny_eomt(grad_checkpointing=True).double().train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 48, 64, dtype=torch.float64)
    for model in (plain, ckpt):
        model.set_mask_probabilities([1.0, 0.5])
        out = model(x, generator=torch.Generator().manual_seed(1))
        (sum(m.pow(2).mean() for m in out.mask_logits) + sum(c.pow(2).mean() for c in out.class_logits)).backward()
    assert_same_gradients(gradients(plain), gradients(ckpt))


@pytest.mark.parametrize('kwargs,error,message', [
    (dict(num_blocks=5), ValueError, r"num_blocks=5: the queries join the last num_blocks of .* 4 blocks; choose 1 to 4"),
    (dict(num_blocks=0), ValueError, 'choose 1 to 4'),
    (dict(num_queries=0), ValueError, 'positive number of queries'),
    (dict(num_classes=0), ValueError, 'number of classes'),
])
def test_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        tiny_eomt(**kwargs)


def test_trunks_that_cannot_take_queries_are_refused():
    with pytest.raises(ValueError, match='BEiT.*relative position bias'):
        EoMT('beit_base_patch16_224', num_classes=K, img_size=64, **TINY)
    with pytest.raises(ValueError, match=r'VisionTransformerDistilled\) embeds its tokens its own way'):
        EoMT('deit_tiny_distilled_patch16_224', num_classes=K, img_size=64, **TINY)
    with pytest.raises(ValueError, match="not a plain Vision Transformer"):
        EoMT('resnet18', num_classes=K)
    model = tiny_eomt()
    with pytest.raises(ValueError, match='2 masked blocks; got 3 mask probabilities'):
        model.set_mask_probabilities([1.0, 1.0, 1.0])


def test_mask_annealing_follows_the_authors_windows():
    schedule = MaskAnnealing([6520, 13040, 19560, 26080], [13040, 19560, 26080, 32600], max_iters=39000)
    assert schedule.probabilities(0) == [1.0] * 4
    assert schedule.probabilities(13040) == [0.0, 1.0, 1.0, 1.0]
    halfway = schedule.probabilities(6520 + 3260)[0]
    assert halfway == pytest.approx(0.5 ** 0.9, rel=1e-12)
    assert schedule.probabilities(32600) == [0.0] * 4
    assert annealed_probability(5, 0, 10, power=1.0) == 0.5
    evenly = MaskAnnealing.evenly(4, 40000)  # the authors' ADE20K windows
    assert (evenly.starts, evenly.ends) == ([6520, 13040, 19560, 26080], [13040, 19560, 26080, 32600])
    camvid = MaskAnnealing.evenly(2, 1000)  # configs/eomt/eomt_vit-t16-scratch_1xb8-1000it_camvid-176x176.py
    assert (camvid.starts, camvid.ends) == ([163, 489], [489, 815])
    with pytest.raises(ValueError, match=r'windows \[3\] end at \[32600\], after the schedule.s 30000 iterations'):
        MaskAnnealing([6520, 13040, 19560, 26080], [13040, 19560, 26080, 32600], max_iters=30000)
    with pytest.raises(ValueError, match='empty or negative'):
        MaskAnnealing([10], [10])


def test_two_stage_warmup_is_the_authors_schedule():
    warmup, total = (500, 1000), 40000
    assert two_stage_warmup_poly(0, total, warmup) == 0.0
    assert two_stage_warmup_poly(250, total, warmup) == 0.5
    assert two_stage_warmup_poly(250, total, warmup, trunk=True) == 0.0
    assert two_stage_warmup_poly(1000, total, warmup, trunk=True) == 0.5
    head = two_stage_warmup_poly(20250, total, warmup)
    assert head == pytest.approx((1 - (20250 - 500) / (total - 500)) ** 0.9, rel=1e-12)
    trunk = two_stage_warmup_poly(20750, total, warmup, trunk=True)
    assert trunk == pytest.approx((1 - (20750 - 1500) / (total - 1500)) ** 0.9, rel=1e-12)
    assert two_stage_warmup_poly(total, total, warmup) == 0.0
