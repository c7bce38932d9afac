"""LastLevelMaxPool: ViTDet's stride-64 level (core, torch only)."""
import pytest
import torch

from vitadapter import ViTPyramid
from vitadapter.necks.extra_levels import LastLevelMaxPool

from conftest import tiny


@pytest.mark.parametrize('side', [7, 8, 13])
def test_extra_levels_are_every_other_pixel(side):
    """Max pooling with kernel 1, stride 2 picks every other row and column: exactly x[..., ::2, ::2]
    (no arithmetic), ceil(n / 2) of them."""
    levels = [torch.randn(2, 5, 4 * side, 4 * side), torch.randn(2, 5, side, side + 1)]
    out = LastLevelMaxPool(num_extra=2)(levels)
    assert len(out) == 4 and out[0] is levels[0] and out[1] is levels[1]
    assert torch.equal(out[2], levels[1][..., ::2, ::2])
    assert torch.equal(out[3], out[2][..., ::2, ::2])
    assert tuple(out[2].shape[-2:]) == (-(-side // 2), -(-(side + 1) // 2))


def test_vitdet_pyramid_strides_up_to_64():
    """ViTPyramid on the last block with ViTDet's pyramid + LastLevelMaxPool: levels of an image of
    side H are ceil(H / s) for s = 4 ... 64, even for H not a multiple of 64."""
    backbone = ViTPyramid(**tiny('vit', out_indices=(-1,), out_channels=32))
    neck = LastLevelMaxPool()
    for h, w in ((64, 64), (70, 100)):
        levels = neck(backbone(torch.randn(1, 3, h, w)))
        assert [tuple(y.shape[-2:]) for y in levels] == [
            (-(-h // s), -(-w // s)) for s in (4, 8, 16, 32, 64)]
        assert {y.shape[1] for y in levels} == {32}


@pytest.mark.parametrize('bad', [0, -1, 1.5, True])
def test_bad_num_extra_is_refused(bad):
    with pytest.raises(ValueError, match='num_extra must be a positive int'):
        LastLevelMaxPool(bad)


def test_a_single_map_is_refused():
    with pytest.raises(ValueError, match="takes the backbone's levels"):
        LastLevelMaxPool()(torch.randn(1, 3, 8, 8))
