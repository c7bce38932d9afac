"""Decode heads vitadapter adds to mmseg's ``MODELS`` registry.

``LinearProbeHead``: DINOv2's linear segmentation probe. The chosen levels' maps (e.g. the last
four blocks of a frozen ViT, ``ViTPyramid(pyramid='none', out_indices=4, norm=True)``) are resized
to the first one's size and concatenated, optionally with each level's class token broadcast over
the map (``concat_cls_token=True``, needs ``output_cls_token=True`` on the backbone), then batch
norm and a 1x1 convolution to the classes.
"""
from typing import List, Sequence

import torch
from mmcv.cnn import build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS


@MODELS.register_module()
class LinearProbeHead(BaseDecodeHead):
    """Args: in_channels (list, one per selected level), in_index (list), concat_cls_token,
    and BaseDecodeHead's (num_classes, norm_cfg for the batch norm, dropout_ratio, losses)."""

    def __init__(self, in_channels: Sequence[int], in_index: Sequence[int],
                 concat_cls_token: bool = False, norm_cfg=dict(type='BN'), **kwargs):
        if not isinstance(in_channels, (list, tuple)) or not isinstance(in_index, (list, tuple)):
            raise ValueError("LinearProbeHead takes lists: in_channels=[C, ...], in_index=[i, ...]")
        width = sum(in_channels) * (2 if concat_cls_token else 1)
        kwargs.pop('channels', None)
        super().__init__(in_channels=list(in_channels), in_index=list(in_index), channels=width,
                         input_transform='multiple_select', norm_cfg=norm_cfg, **kwargs)
        self.concat_cls_token = concat_cls_token
        self.bn = build_norm_layer(norm_cfg, width)[1]

    def _features(self, inputs: List) -> torch.Tensor:
        selected = [inputs[i] for i in self.in_index]
        pairs = [isinstance(x, (list, tuple)) for x in selected]
        if self.concat_cls_token and not all(pairs):
            raise ValueError("concat_cls_token=True needs [map, cls_token] inputs: set "
                             "output_cls_token=True on the backbone")
        maps = [x[0] if p else x for x, p in zip(selected, pairs)]
        size = maps[0].shape[2:]
        feats = [resize(m, size=size, mode='bilinear', align_corners=self.align_corners)
                 if m.shape[2:] != size else m for m in maps]
        if self.concat_cls_token:
            for (_, cls), m in zip(selected, maps):
                if cls.shape[1] != m.shape[1]:
                    raise ValueError(f"class token width {cls.shape[1]} != map channels "
                                     f"{m.shape[1]}: use pyramid='none' for a linear probe")
                feats.append(cls[:, :, None, None].expand(-1, -1, *size))
        return torch.cat(feats, dim=1)

    def forward(self, inputs: List) -> torch.Tensor:
        """inputs: the backbone's levels -> (B, num_classes, h, w) logits at the first level's size."""
        return self.cls_seg(self.bn(self._features(inputs)))
