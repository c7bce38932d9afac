"""``TorchMask2FormerHead``: Mask2Former as an mmseg decode head, on vitadapter's plain-PyTorch
implementation (:mod:`vitadapter.heads.mask2former`): no mmdet, no compiled mmcv ops.

mmseg's own ``Mask2FormerHead`` subclasses mmdet's, whose pixel decoder builds mmcv's compiled
``MultiScaleDeformableAttention``; where mmdet cannot import (mmcv without compiled ops) mmseg
silently replaces its base class and the head cannot work. This head has the same parameters and
state_dict keys (checkpoints load either way with strict=True), the same loss, the same outputs,
and the same decode-head API (``loss(x, batch_data_samples, train_cfg)``, ``predict(x,
batch_img_metas, test_cfg) -> seg logits``). Its config is mmseg's in short::

    decode_head=dict(type='TorchMask2FormerHead', in_channels='auto', num_classes=150,
                     feat_channels=256, out_channels=256, num_queries=100,
                     pixel_decoder=dict(num_layers=6, num_heads=8, num_points=4, feedforward_channels=1024),
                     transformer_decoder=dict(num_layers=9, num_heads=8, feedforward_channels=2048),
                     loss_weights=dict(cls=2.0, mask=5.0, dice=5.0, no_object=0.1),
                     train_cfg=dict(num_points=12544, oversample_ratio=3.0, importance_sample_ratio=0.75))
"""
from typing import List, Optional, Sequence

import torch
from mmseg.registry import MODELS

from ...heads.mask2former import Mask2Former, Mask2FormerLoss, semantic_inference, semantic_targets

PIXEL_DECODER = dict(num_layers=6, num_heads=8, num_points=4, feedforward_channels=1024, num_groups=32)
TRANSFORMER_DECODER = dict(num_layers=9, num_heads=8, feedforward_channels=2048)
LOSS_WEIGHTS = dict(cls=2.0, mask=5.0, dice=5.0, no_object=0.1)
TRAIN_CFG = dict(num_points=12544, oversample_ratio=3.0, importance_sample_ratio=0.75)


def _settings(name: str, given: Optional[dict], defaults: dict) -> dict:
    given = dict(given or {})
    given.pop('type', None)
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"TorchMask2FormerHead {name}: unknown keys {sorted(unknown)}; it takes "
                         f"{sorted(defaults)} (defaults {defaults})")
    return {**defaults, **given}


@MODELS.register_module()
class TorchMask2FormerHead(Mask2Former):
    """Args:
        in_channels: the backbone levels' channels, stride 4 first ('auto' with ViTEncoderDecoder).
        num_classes: classes K. feat_channels, out_channels, num_queries: as mmseg's (256, 256, 100).
        num_transformer_feat_level: levels the encoder and the decoder read (3: strides 8/16/32).
        pixel_decoder: num_layers, num_heads, num_points, feedforward_channels, num_groups
            (6, 8, 4, 1024, 32); deform_implementation ('auto').
        transformer_decoder: num_layers, num_heads, feedforward_channels (9, 8, 2048).
        loss_weights: cls, mask, dice (also the matching costs' weights), no_object (2, 5, 5, 0.1).
        train_cfg: num_points, oversample_ratio, importance_sample_ratio (12544, 3.0, 0.75).
        align_corners (False), ignore_index (255): as mmseg's. strides: accepted for mmseg configs'
            sake (the levels' sizes are read from the maps).
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int, feat_channels: int = 256,
                 out_channels: int = 256, num_queries: int = 100, num_transformer_feat_level: int = 3,
                 pixel_decoder: Optional[dict] = None, transformer_decoder: Optional[dict] = None,
                 loss_weights: Optional[dict] = None, train_cfg: Optional[dict] = None,
                 align_corners: bool = False, ignore_index: int = 255,
                 deform_implementation: str = 'auto', strides=None, init_cfg=None):
        if isinstance(in_channels, int) or in_channels in ('auto', None):
            raise ValueError(f"TorchMask2FormerHead: in_channels={in_channels!r}; give one value per "
                             f"backbone level (a list), or 'auto' under ViTEncoderDecoder")
        pix = _settings('pixel_decoder', pixel_decoder, PIXEL_DECODER)
        dec = _settings('transformer_decoder', transformer_decoder, TRANSFORMER_DECODER)
        weights = _settings('loss_weights', loss_weights, LOSS_WEIGHTS)
        points = _settings('train_cfg', train_cfg, TRAIN_CFG)
        super().__init__(
            list(in_channels), num_classes, feat_channels, out_channels, num_queries,
            num_transformer_feat_level, encoder_layers=pix['num_layers'], encoder_heads=pix['num_heads'],
            encoder_points=pix['num_points'], encoder_ffn=pix['feedforward_channels'],
            decoder_layers=dec['num_layers'], decoder_heads=dec['num_heads'],
            decoder_ffn=dec['feedforward_channels'], num_groups=pix['num_groups'],
            deform_implementation=deform_implementation)
        self.criterion = Mask2FormerLoss(
            num_classes, class_weight=weights['cls'], mask_weight=weights['mask'],
            dice_weight=weights['dice'], no_object_weight=weights['no_object'], **points)
        self.in_channels = list(in_channels)
        self.out_channels = num_classes  # what EncoderDecoder reads: seg logits' channels
        self.align_corners, self.ignore_index = align_corners, ignore_index
        self.init_cfg = init_cfg

    def init_weights(self) -> None:
        """Called by mmengine's ``model.init_weights()``: mmdet's initialisation."""
        self.reset_parameters()

    def loss(self, x: List[torch.Tensor], batch_data_samples, train_cfg=None) -> dict:
        """x: the backbone's levels; batch_data_samples: SegDataSample with gt_sem_seg (1, H, W)
        -> {'loss_cls', 'loss_mask', 'loss_dice', 'd0.loss_cls', ...}."""
        targets = [semantic_targets(sample.gt_sem_seg.data, self.ignore_index)
                   for sample in batch_data_samples]
        cls_preds, mask_preds = self(list(x))
        return self.criterion(cls_preds, mask_preds, targets)

    def predict(self, x: List[torch.Tensor], batch_img_metas: List[dict], test_cfg=None) -> torch.Tensor:
        """-> seg logits (B, K, H, W) at the padded input size (the crop's size in slide mode)."""
        meta = batch_img_metas[0]
        slide = test_cfg is not None and test_cfg.get('mode') == 'slide'
        size = meta['pad_shape'] if 'pad_shape' in meta and not slide else meta['img_shape']
        cls_preds, mask_preds = self(list(x))
        return semantic_inference(cls_preds[-1], mask_preds[-1], tuple(size[:2]))
