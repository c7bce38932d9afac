"""mmseg's own parts of the baselines: its VisionTransformer of the trunk's shape, its
Feature2Pyramid / MultiLevelNeck, a backbone followed by such a neck, and building in its registry."""
import copy
from typing import Tuple

import torch
import torch.nn as nn

from vitadapter import TrunkOutput

PYRAMID_SCALES = [4, 2, 1, 0.5]


def mmseg_vit_cfg(geometry: dict, size: Tuple[int, int], with_cp: bool) -> dict:
    """mmseg's VisionTransformer config with ``geometry`` (see :func:`.vit.vit_geometry`)."""
    if len(geometry['out_indices']) != len(PYRAMID_SCALES):
        raise ValueError(f"the mmseg necks take {len(PYRAMID_SCALES)} levels; the trunk chooses "
                         f"blocks {geometry['out_indices']}")
    return dict(type='VisionTransformer', img_size=tuple(size), in_channels=3, drop_rate=0.0,
                attn_drop_rate=0.0, drop_path_rate=0.0, final_norm=False,
                norm_cfg=dict(type='LN', eps=1e-6), act_cfg=dict(type='GELU'),
                interpolate_mode='bicubic', with_cp=with_cp, **geometry)


def mmseg_neck_cfg(kind: str, channels: int) -> dict:
    """mmseg's Feature2Pyramid ('f2p', BN) or MultiLevelNeck ('mln') for ``channels``-wide maps."""
    if kind == 'f2p':
        return dict(type='Feature2Pyramid', embed_dim=channels, rescales=list(PYRAMID_SCALES),
                    norm_cfg=dict(type='BN', requires_grad=True))
    return dict(type='MultiLevelNeck', in_channels=[channels] * len(PYRAMID_SCALES),
                out_channels=channels, scales=list(PYRAMID_SCALES))


class BackboneWithNeck(nn.Module):
    """A backbone (timm trunk or mmseg ViT) followed by an mmseg neck: images -> pyramid levels.

    Input (B, 3, H, W); output: the neck's 4 maps (B, C, H/s, W/s), the patch grid rescaled by
    ``PYRAMID_SCALES`` (s = 4, 8, 16, 32 for patch 16), C the ViT's width.
    """

    def __init__(self, backbone: nn.Module, neck: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.neck = neck

    def forward(self, x: torch.Tensor):
        features = self.backbone(x)
        if isinstance(features, TrunkOutput):
            features = features.maps
        return self.neck(list(features))


def build_mmseg(cfg: dict) -> nn.Module:
    """Build ``cfg`` in mmseg's MODELS registry (mmseg scope; vitadapter's classes registered)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    import vitadapter.engine  # noqa: F401  (registers vitadapter's backbones)
    init_default_scope('mmseg')
    return MODELS.build(copy.deepcopy(cfg))
