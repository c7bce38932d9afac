"""LinearProbeHead: DINOv2's and DINOv3's linear probes on a frozen trunk (the final norm on the taken
blocks, batch norm, 1x1 conv), on one block or on the four last ones concatenated."""
import pytest
import torch

import vitadapter.engine  # noqa: F401  (registers the head)
from mmseg.registry import MODELS
from vitadapter import ViTPyramid

from conftest import TINY, requires_timm_dinov3


def probe(dropout_before_norm, in_channels=(64,), in_index=(0,)):
    return MODELS.build(dict(type='LinearProbeHead', in_channels=list(in_channels), in_index=list(in_index),
                             dropout_before_norm=dropout_before_norm, dropout_ratio=0.5,
                             num_classes=5, norm_cfg=dict(type='BN', requires_grad=True))).train()


@pytest.mark.parametrize('before', [False, True])
def test_dropout_order(before):
    """DINOv3's LinearHead: Dropout2d -> BN -> conv; mmseg's (DINOv2 probe): BN -> Dropout2d -> conv."""
    head = probe(before)
    feats = torch.randn(4, 64, 6, 5)
    torch.manual_seed(1)
    out = head([feats])
    torch.manual_seed(1)  # the same dropout mask
    if before:
        expected = head.conv_seg(head.bn(head.dropout(feats)))
    else:
        expected = head.conv_seg(head.dropout(head.bn(feats)))
    assert out.shape == (4, 5, 6, 5)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.manual_seed(1)  # the other order gives another function of the same mask
    other = head.conv_seg(head.dropout(head.bn(feats))) if before else \
        head.conv_seg(head.bn(head.dropout(feats)))
    assert not torch.allclose(out, other)


@requires_timm_dinov3
def test_dinov3_last_four_blocks_with_final_norm():
    """The FOUR_LAST probe: blocks L-4..L-1 of a frozen DINOv3, each through the final norm (timm's
    forward_intermediates(norm=True)), patch tokens only, concatenated into 4 x C channels."""
    backbone = ViTPyramid('vit_small_patch16_dinov3', img_size=64, **TINY, out_indices=4, norm=True,
                          pyramid='none', freeze_trunk=True).eval()
    head = probe(True, in_channels=backbone.feature_info.channels(), in_index=range(4)).eval()
    x = torch.randn(2, 3, 48, 80)
    with torch.no_grad():
        levels = backbone(x)
        maps = backbone.trunk.model.forward_intermediates(x, indices=[0, 1, 2, 3], norm=True,
                                                           intermediates_only=True)
        logits = head(list(levels))
        expected = head.conv_seg(head.bn(torch.cat(maps, dim=1)))  # eval: no dropout
    assert backbone.feature_info.channels() == [64] * 4 and backbone.feature_info.reduction() == [16] * 4
    assert all(torch.equal(a, b) for a, b in zip(levels, maps))
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)
    assert not any(p.requires_grad for p in backbone.parameters())
