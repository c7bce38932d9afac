"""conv3x3_of_resized (vitadapter.heads): a 3x3 convolution of bilinearly resized maps, computed with
the channel mixing at each map's own resolution, equals resize-then-convolve (plain torch, no mm*)."""
import pytest
import torch
import torch.nn.functional as F

from vitadapter.layers.measured_choice import MeasuredChoice
from vitadapter.layers.resized_conv import (conv3x3_of_concat, conv3x3_of_resized,
                                            conv3x3_of_resized_concat, resized_conv_saves_work)


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
    torch.testing.assert_close(conv3x3_of_concat(maps, weight, bias, size), expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r'weight must be \(C_out, 14, 3, 3\)'):
        conv3x3_of_resized_concat(maps, weight[:, :10], None, size)


def test_matrices_cached_under_inference_mode_serve_a_later_training_step():
    from vitadapter.layers.resized_conv import _cached_tap_resize_matrix
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


def test_measured_choice_keeps_the_fastest_per_key_and_caches_it():
    log = []
    seconds = {('a', 'x'): [3.0, 1.0], ('a', 'y'): [2.0, 2.0], ('b', 'x'): [1.0, 1.0], ('b', 'y'): [1.0, 1.0]}

    def measure(name, fn):
        fn()
        log.append(name)
        return seconds[(key, name)].pop(0)
    choice = MeasuredChoice(rounds=2, measure=measure)
    ran = []
    candidates = {'x': lambda: ran.append('x'), 'y': lambda: ran.append('y')}
    key = 'a'
    assert choice.pick('a', candidates) == 'x'          # best of two runs: 1.0 < 2.0
    assert ran == log == ['x', 'y', 'x', 'y']           # alternated
    assert choice.pick('a', candidates) == 'x' and len(log) == 4   # cached
    key = 'b'
    assert choice.pick('b', candidates) == 'x'          # a tie keeps the first listed
    assert choice.timings['a'] == {'x': 1.0, 'y': 2.0}
    with pytest.raises(ValueError, match='rounds'):
        MeasuredChoice(rounds=0)


def test_measured_choice_measures_nothing_inside_torch_compile():
    choice = MeasuredChoice(measure=lambda name, fn: pytest.fail('measured while compiling'))

    @torch.compile(backend='eager', fullgraph=False)
    def f(x):
        picked = choice.pick('k', {'x': lambda: None})
        return x + (1 if picked is None else 2)
    assert f(torch.zeros(1)).item() == 1 and choice.choices == {}
