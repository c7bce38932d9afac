"""Any input size, patch 14 on a stride-16 pyramid, pyramid scales."""
import math

import pytest
import torch

from vitadapter import ViTPyramid
from vitadapter.trunk.grid import pad_to_multiple, resample_to_grid

from conftest import tiny


def ceil_sizes(h, w, strides):
    return [(math.ceil(h / s), math.ceil(w / s)) for s in strides]


@pytest.mark.parametrize('family,size', [('vit', (511, 383)), ('dinov2', (512, 512)),
                                         ('dinov2_reg', (500, 333)), ('eva02', (97, 130))])
@pytest.mark.parametrize('grid_mapping', ['maps', 'input'])
def test_any_size_gives_ceil_sized_levels(family, size, grid_mapping):
    model = ViTPyramid(**tiny(family, depth=2), out_indices=(-1,), pyramid='simple',
                       out_channels=16, grid_mapping=grid_mapping).eval()
    with torch.no_grad():
        levels = model(torch.randn(1, 3, *size))
    assert [tuple(y.shape[-2:]) for y in levels] == ceil_sizes(*size, (4, 8, 16, 32))
    assert model.output_sizes(size) == ceil_sizes(*size, (4, 8, 16, 32))


def test_patch14_input_mapping_runs_the_trunk_on_the_stride16_grid():
    """grid_mapping='input': 512x512 -> 32x32 cells of 16 px -> the trunk sees 448x448 (32 x 14)."""
    model = ViTPyramid(**tiny('dinov2', depth=2), out_indices=(-1,), grid_mapping='input').eval()
    seen = []
    model.trunk.model.patch_embed.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape))
    with torch.no_grad():
        model(torch.randn(1, 3, 512, 512))
    assert seen == [(1, 3, 448, 448)]


def test_patch14_maps_mapping_keeps_native_tokens():
    model = ViTPyramid(**tiny('dinov2', depth=2), out_indices=(-1,), grid_mapping='maps').eval()
    seen = []
    model.trunk.model.patch_embed.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape))
    with torch.no_grad():
        model(torch.randn(1, 3, 512, 512))
    assert seen == [(1, 3, 518, 518)]  # padded to 37 whole patches of 14


def test_resampling_aligns_pixel_centres():
    """A map holding each token's centre x-coordinate (in pixels) resampled from stride 14 to
    stride 16 holds each output cell's centre: 16 * (j + 0.5)."""
    patch, stride, tokens = 14, 16, 37
    centres = (torch.arange(tokens) + 0.5) * patch
    x = centres.view(1, 1, 1, tokens).expand(1, 1, tokens, tokens).contiguous()
    y = resample_to_grid(x, (patch, patch), (stride, stride), (32, 32))
    expected = (torch.arange(32) + 0.5) * stride
    assert y.shape == (1, 1, 32, 32)
    assert torch.allclose(y[0, 0, 0], expected, atol=1e-4)
    assert torch.allclose(y[0, 0, :, 5], torch.full((32,), expected[5].item()), atol=1e-4)


def test_same_stride_resampling_is_identity():
    x = torch.randn(1, 3, 5, 7)
    assert resample_to_grid(x, (16, 16), (16, 16), (5, 7)) is x


def test_padding_is_bottom_right_zeros():
    x = torch.ones(1, 1, 17, 30)
    y = pad_to_multiple(x, (16, 16))
    assert y.shape == (1, 1, 32, 32)
    assert torch.equal(y[..., :17, :30], x) and y[..., 17:, :].abs().sum() == 0 and y[..., 30:].abs().sum() == 0


@pytest.mark.parametrize('scales,strides', [((4, 2, 1, 0.5, 0.25), (4, 8, 16, 32, 64)),
                                            ((8, 4, 2, 1), (2, 4, 8, 16)), ((1,), (16,))])
@pytest.mark.parametrize('pyramid', ['feature2pyramid', 'simple'])
def test_other_scales(scales, strides, pyramid):
    model = ViTPyramid(**tiny('vit', depth=2), out_indices=(-1,), scales=scales, pyramid=pyramid,
                       out_channels=16 if pyramid == 'simple' else None).eval()
    assert tuple(model.feature_info.reduction()) == strides
    with torch.no_grad():
        levels = model(torch.randn(1, 3, 100, 70))
    assert [tuple(y.shape[-2:]) for y in levels] == ceil_sizes(100, 70, strides)


@pytest.mark.parametrize('scales,message', [((3, 1), 'powers of two'), ((1.5,), 'powers of two'),
                                            ((16, 1), 'powers of two'), ((1, 2), 'decreasing'),
                                            ((), 'empty'), ((2, 2), 'decreasing')])
def test_bad_scales_are_refused(scales, message):
    with pytest.raises(ValueError, match=message):
        ViTPyramid(**tiny('vit', depth=1), out_indices=(-1,), scales=scales)


def test_levels_must_match_blocks():
    with pytest.raises(ValueError, match='one block per level'):
        ViTPyramid(**tiny('vit', depth=4), out_indices=(1, 2, 3), scales=(4, 2, 1, 0.5))


def test_default_pyramid_halves_channels_per_upsampling_step():
    model = ViTPyramid(**tiny('vit'))
    assert model.feature_info.channels() == [16, 32, 64, 64]
    assert not any(isinstance(m, torch.nn.Conv2d) for m in model.neck.modules())  # no output convs
    vitdet = ViTPyramid(**tiny('vit'), out_channels=24)
    assert vitdet.feature_info.channels() == [24] * 4
    kernels = [m.kernel_size for m in vitdet.neck.levels[0] if isinstance(m, torch.nn.Conv2d)]
    assert kernels == [(1, 1), (3, 3)]


def test_no_pyramid_returns_the_block_maps():
    model = ViTPyramid(**tiny('dinov2'), pyramid='none', out_indices=4, norm=True).eval()
    assert model.feature_info.reduction() == [16] * 4 and model.feature_info.channels() == [64] * 4
    assert list(model.output_shape()) == ['p4_b0', 'p4_b1', 'p4_b2', 'p4_b3']
    x = torch.randn(1, 3, 100, 70)
    with torch.no_grad():
        levels = model(x)
        maps = model.trunk(x).maps
    assert [tuple(y.shape) for y in levels] == [(1, 64, 7, 5)] * 4
    assert all(torch.equal(a, b) for a, b in zip(levels, maps))
    with pytest.raises(ValueError, match="pyramid='none' returns the trunk's maps"):
        ViTPyramid(**tiny('vit'), pyramid='none', out_channels=32)
