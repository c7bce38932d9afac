"""Any input size, patch 14 on a stride-16 pyramid, pyramid scales."""
import math

import pytest
import torch

from vitadapter import ViTAdapter, ViTPyramid
from vitadapter.layers import pad_to_multiple, resample_to_grid

from conftest import ceil_sizes, tiny


@pytest.mark.parametrize('family,size', [('vit', (511, 383)), ('dinov2', (512, 512)),
                                         ('dinov2_reg', (500, 333)), ('eva02', (97, 130))])
@pytest.mark.parametrize('grid_mapping', ['maps', 'input'])
def test_any_size_gives_ceil_sized_levels(family, size, grid_mapping):
    model = ViTPyramid(**tiny(family, depth=2), out_indices=(-1,), pyramid='simple',
                       out_channels=16, grid_mapping=grid_mapping).eval()
    with torch.no_grad():
        levels = model(torch.randn(1, 3, *size))
    assert [tuple(y.shape[-2:]) for y in levels] == ceil_sizes(size)
    assert model.output_sizes(size) == ceil_sizes(size)


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


def centre_ramp(cells: int, stride: int) -> torch.Tensor:
    """(cells,) pixel coordinates of the centres of ``cells`` cells of ``stride``, float64."""
    return (torch.arange(cells, dtype=torch.float64) + 0.5) * stride


@pytest.mark.parametrize('src,dst,src_cells,dst_cells', [
    (14, 16, (37, 23), (32, 20)),  # DINOv2 tokens onto the stride-16 pyramid grid
    (16, 4, (7, 5), (28, 20)),     # ViT-Adapter's added ViT maps: stride 16 -> 4, 8, 32
    (16, 8, (7, 5), (14, 10)),
    (16, 32, (8, 6), (4, 3)),
    (14, 32, (37, 23), (17, 11)),
])
def test_resampling_reproduces_pixel_coordinate_ramps(src, dst, src_cells, dst_cells):
    """Maps holding each cell's centre y (channel 0) and x (channel 1) in pixels. Bilinear
    resampling reproduces affine functions exactly, so output cell j of stride ``dst`` holds its
    own centre ``dst * (j + 0.5)`` where that lies between the first and last input centres, and
    the nearest of those two (border clamp) elsewhere. The expectation is computed from the
    coordinates alone, not with the implementation's interpolation."""
    ys, xs = centre_ramp(src_cells[0], src), centre_ramp(src_cells[1], src)
    grid = torch.stack(torch.meshgrid(ys, xs, indexing='ij'))[None]  # (1, 2, h, w)
    out = resample_to_grid(grid, (src, src), (dst, dst), dst_cells)
    expected_y = centre_ramp(dst_cells[0], dst).clamp(ys[0].item(), ys[-1].item())
    expected_x = centre_ramp(dst_cells[1], dst).clamp(xs[0].item(), xs[-1].item())
    expected = torch.stack(torch.meshgrid(expected_y, expected_x, indexing='ij'))[None]
    assert out.shape == expected.shape == (1, 2, *dst_cells)
    # The weights are stored in float32 (the map is float64): each of the two weights of an output
    # cell is off by at most 2^-24 relative, i.e. at most 2 * 2^-24 * max|input| per axis, 2 axes.
    tol = 2 * 2 * 2 ** -24 * grid.abs().max().item()
    assert (out - expected).abs().max().item() <= tol
    # and the ramp is not trivially clamped: most cells are interior
    interior = (centre_ramp(dst_cells[1], dst) >= xs[0]) & (centre_ramp(dst_cells[1], dst) <= xs[-1])
    assert interior.sum() >= dst_cells[1] // 2


def test_resampling_is_linear_in_the_map_and_keeps_dtype():
    """Channels and batch items are resampled independently with the same weights."""
    a, b = torch.randn(2, 3, 7, 5, dtype=torch.float64), torch.randn(2, 3, 7, 5, dtype=torch.float64)
    f = lambda m: resample_to_grid(m, (16, 16), (8, 8), (14, 10))  # noqa: E731
    assert f(a).dtype == torch.float64
    torch.testing.assert_close(f(2 * a - b), 2 * f(a) - f(b), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(f(a)[1:, 2:], f(a[1:, 2:]), rtol=0, atol=0)


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
    assert [tuple(y.shape[-2:]) for y in levels] == ceil_sizes((100, 70), strides)


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


@pytest.mark.parametrize('src, dst, out', [(16, 4, (13, 9)), (16, 8, (7, 5)), (16, 32, (2, 2)),
                                           (14, 4, (12, 17)), (16, 16, (4, 3))])
def test_resampling_tokens_on_their_grid_equals_resampling_the_map(src, dst, out):
    """layout='NHWC' (tokens (B, h, w, C)) computes the same bilinear weights in another order:
    equal to the NCHW resampling in float64 up to rounding (1e-12 of the values' scale)."""
    grid = torch.randn(2, 5, 4, 3, dtype=torch.float64)  # (B, C, h, w)
    expected = resample_to_grid(grid, (src, src), (dst, dst), out)
    tokens = resample_to_grid(grid.permute(0, 2, 3, 1), (src, src), (dst, dst), out, layout='NHWC')
    assert tokens.shape == (2, *expected.shape[2:], 5)
    assert torch.allclose(tokens.permute(0, 3, 1, 2), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="layout must be 'NCHW' or 'NHWC'"):
        resample_to_grid(grid, (src, src), (dst, dst), out, layout='NWHC')


def test_vit_adapter_levels_are_nchw_contiguous():
    """ViT-Adapter's eager output stage works on channels-last tokens; its levels leave as
    NCHW-contiguous maps like the pyramids' (a stock UPerHead would otherwise get channels-last
    maps), in training too."""
    model = ViTAdapter(**tiny('vit', depth=4), deform_num_heads=4, conv_inplane=16,
                       interaction_indexes=[[0, 0], [1, 1], [2, 2], [3, 3]])
    levels = model(torch.randn(2, 3, 64, 64))
    levels[0].sum().backward()
    assert [y.shape[-1] for y in levels] == [16, 8, 4, 2]
    assert all(y.is_contiguous() for y in levels), [y.stride() for y in levels]


@pytest.mark.parametrize('pyramid', ['feature2pyramid', 'simple'])
def test_pyramid_levels_are_nchw_contiguous(pyramid):
    """The upsampled levels pass a LayerNorm2d (a channels-last view inside); heads written for
    NCHW get NCHW-contiguous maps, in training too."""
    model = ViTPyramid(**tiny('vit', depth=2), out_indices=(-1,), pyramid=pyramid)
    levels = model(torch.randn(2, 3, 64, 64))
    levels[0].sum().backward()
    assert all(y.is_contiguous() for y in levels), [y.stride() for y in levels]
