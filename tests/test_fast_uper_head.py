"""FastUPerHead and conv3x3_of_resized: the same function as mmseg's UPerHead, computed faster."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmseg.models.decode_heads import UPerHead
from mmseg.registry import MODELS

from vitadapter.engine import FastUPerHead
from vitadapter.heads.resized_conv import (conv3x3_of_resized, conv3x3_of_resized_concat,
                                            resized_conv_saves_work)

HEAD = dict(in_channels=[16, 24, 32, 32], in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3, 6),
            channels=32, dropout_ratio=0.0, num_classes=5, norm_cfg=dict(type='BN', requires_grad=True))


def levels(batch, height, width, channels=(16, 24, 32, 32)):
    """Four maps at strides 4/8/16/32 of an image of height x width (ceil division)."""
    return [torch.randn(batch, c, -(-height // s), -(-width // s))
            for c, s in zip(channels, (4, 8, 16, 32))]


@pytest.mark.parametrize('size', [(16, 16), (20, 28), (7, 13)])
@pytest.mark.parametrize('scale', [1, 2, 4, 8])
@pytest.mark.parametrize('align_corners', [False, True])
def test_conv3x3_of_resized_equals_resize_then_conv(size, scale, align_corners):
    h, w = -(-size[0] // scale), -(-size[1] // scale)
    x = torch.randn(2, 6, h, w, dtype=torch.float64)
    weight = torch.randn(5, 6, 3, 3, dtype=torch.float64)
    expected = F.conv2d(F.interpolate(x, size=size, mode='bilinear', align_corners=align_corners),
                        weight, padding=1)
    got = conv3x3_of_resized(x, weight, size, align_corners)
    assert got.shape == expected.shape == (2, 5, *size)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    channels_last = conv3x3_of_resized(x.contiguous(memory_format=torch.channels_last), weight, size,
                                       align_corners)
    torch.testing.assert_close(channels_last, expected, rtol=1e-10, atol=1e-10)


def test_concat_version_equals_concat_then_conv():
    maps = [torch.randn(2, c, s, s + 1, dtype=torch.float64) for c, s in [(4, 24), (3, 12), (5, 3), (2, 23)]]
    weight = torch.randn(7, 14, 3, 3, dtype=torch.float64)
    bias = torch.randn(7, dtype=torch.float64)
    size = (24, 25)
    cat = torch.cat([F.interpolate(m, size=size, mode='bilinear') for m in maps], dim=1)
    expected = F.conv2d(cat, weight, bias, padding=1)
    torch.testing.assert_close(conv3x3_of_resized_concat(maps, weight, bias, size), expected,
                               rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match=r'weight must be \(C_out, 14, 3, 3\)'):
        conv3x3_of_resized_concat(maps, weight[:, :10], None, size)


def test_matrices_cached_under_inference_mode_serve_a_later_training_step():
    from vitadapter.heads.resized_conv import _cached_tap_resize_matrix
    _cached_tap_resize_matrix.cache_clear()
    x = torch.randn(1, 4, 5, 7)
    weight = torch.randn(3, 4, 3, 3, requires_grad=True)
    with torch.inference_mode():
        conv3x3_of_resized(x, weight, (17, 23))
    conv3x3_of_resized(x.requires_grad_(), weight, (17, 23)).sum().backward()
    assert weight.grad is not None and x.grad.shape == x.shape


def test_conv3x3_of_resized_rejects_a_wrong_weight():
    with pytest.raises(ValueError, match=r'weight must be \(C_out, 6, 3, 3\)'):
        conv3x3_of_resized(torch.randn(1, 6, 4, 4), torch.randn(5, 6, 1, 1), (8, 8))


def test_low_resolution_path_is_chosen_when_it_saves_work():
    assert resized_conv_saves_work((64, 64), (128, 128), 512)      # UperNet's 512-channel levels
    assert resized_conv_saves_work((16, 16), (128, 128), 512)
    assert not resized_conv_saves_work((120, 120), (128, 128), 4)  # almost no resize, few channels


def pair(**overrides):
    init_default_scope('mmseg')
    reference = UPerHead(**dict(HEAD, **overrides))
    fast = FastUPerHead(**dict(HEAD, **overrides))
    fast.load_state_dict(reference.state_dict())  # same keys, both ways
    reference.load_state_dict(fast.state_dict())
    return reference, fast


@pytest.mark.parametrize('height, width', [(64, 64), (72, 104), (36, 50)])
def test_same_outputs_and_gradients_as_uperhead(height, width, monkeypatch):
    import vitadapter.heads.resized_conv as resized_conv
    calls = []
    low_res_path = resized_conv._resized_conv_rows
    spy = lambda *args, **kwargs: calls.append(args[0].shape) or low_res_path(*args, **kwargs)
    monkeypatch.setattr(resized_conv, '_resized_conv_rows', spy)
    # float64: the two are the same function; in float32 the different summation order is
    # amplified by the batch norms' backward (relative differences up to ~1e-2 on gradients of
    # 1e-5 magnitude at UperNet's 512 channels), which says nothing about the math.
    reference, fast = pair()
    reference.double(), fast.double()
    inputs = [x.double() for x in levels(2, height, width)]
    outputs, grads = [], []
    for head in (reference, fast):
        head.train()
        xs = [x.clone().requires_grad_() for x in inputs]
        logits = head(xs)
        (logits * torch.linspace(-1, 1, logits.numel()).view_as(logits)).sum().backward()
        outputs.append(logits.detach())
        grads.append([x.grad for x in xs] + [p.grad for p in head.parameters()])
    assert outputs[0].shape == (2, 5, -(-height // 4), -(-width // 4))
    # the three coarse FPN levels (the finest has the fused size) and the pooled maps smaller
    # than the coarsest level took the low-resolution path
    coarsest = inputs[-1].shape[2:]
    pooled = [s for s in (1, 2, 3, 6) if s < min(coarsest)]
    assert len(calls) == 3 + len(pooled)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-10, atol=1e-10)
    for got, expected in zip(grads[1], grads[0]):
        scale = expected.abs().max().clamp_min(1e-12)
        assert ((got - expected).abs().max() / scale) < 1e-9
    # eval mode (BN running statistics, as in inference) agrees too
    reference.eval(), fast.eval()
    with torch.no_grad():
        torch.testing.assert_close(fast(inputs), reference(inputs), rtol=1e-10, atol=1e-10)


def test_float32_outputs_agree_to_rounding():
    reference, fast = pair()
    reference.eval(), fast.eval()
    inputs = levels(2, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fast(inputs), reference(inputs), rtol=1e-4, atol=1e-4)


def test_without_norm_the_fusion_bias_is_kept():
    reference, fast = pair(norm_cfg=None)
    assert fast.fpn_bottleneck.conv.bias is not None
    inputs = levels(1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fast(inputs), reference(inputs), rtol=1e-4, atol=1e-4)


def test_built_from_a_config_and_refuses_a_non_plain_fusion_conv():
    init_default_scope('mmseg')
    head = MODELS.build(dict(type='FastUPerHead', **HEAD))
    assert isinstance(head, FastUPerHead)
    with pytest.raises(ValueError, match="plain 3x3 fusion convolution"):
        FastUPerHead(**dict(HEAD, conv_cfg=dict(type='Conv2dAdaptivePadding')))  # pure torch, any mmcv


def test_bf16_autocast_runs_and_stays_close():
    reference, fast = pair()
    reference.eval(), fast.eval()
    inputs = levels(1, 64, 64)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        got = fast(inputs)
    with torch.no_grad():
        expected = reference(inputs)
    assert got.dtype == torch.bfloat16
    assert (got.float() - expected).abs().max() < 0.05 * expected.abs().max()


def test_torch_compile_matches_eager_and_trains():
    _, fast = pair()
    inputs = levels(2, 64, 64)
    fast.eval()
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(fast)(inputs), fast(inputs), rtol=1e-4, atol=1e-4)
    fast.train()
    torch.compile(fast)(inputs).sum().backward()
    assert fast.fpn_bottleneck.conv.weight.grad is not None


def test_levels_of_one_size_and_align_corners_match_uperhead():
    """pyramid='none' gives four maps of one stride: every share is then a direct convolution."""
    for align_corners, inputs in ((False, [torch.randn(2, c, 12, 10) for c in (16, 24, 32, 32)]),
                                  (True, levels(2, 72, 104))):
        reference, fast = pair(align_corners=align_corners)
        reference.double().eval(), fast.double().eval()
        with torch.no_grad():
            xs = [x.double() for x in inputs]
            torch.testing.assert_close(fast(xs), reference(xs), rtol=1e-10, atol=1e-10)
