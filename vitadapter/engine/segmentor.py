"""``ViTEncoderDecoder``: mmseg's ``EncoderDecoder`` that reads the heads' channels off the backbone.

A config can say ``in_channels='auto'`` for whatever reads the backbone (the decode and auxiliary
heads, or a neck such as mmseg's FPN): the segmentor fills it from the backbone's
``feature_info.channels()`` before mmseg builds the heads, and checks explicit values against it.
Because the model resolves its own channels, a config runs unchanged under mmseg's stock
``tools/train.py`` / ``tools/test.py`` (and ``mim train``), vitadapter's tools and plain
``MODELS.build``. Swapping the ViT (``backbone.model_name``) then needs no other edit.

Everything else is mmseg's ``EncoderDecoder``: same arguments, parameters and state_dict keys, so
checkpoints load either way.
"""
import copy

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

from .channels import resolve_head_channels


@MODELS.register_module()
class ViTEncoderDecoder(EncoderDecoder):
    """mmseg's EncoderDecoder with ``in_channels='auto'`` resolved from the backbone.

    Args: those of ``EncoderDecoder`` (backbone, decode_head, neck, auxiliary_head, train_cfg,
    test_cfg, data_preprocessor, pretrained, init_cfg). The backbone must be a vitadapter backbone
    (``ViTPyramid``, ``ViTAdapter``) for ``'auto'``; with another backbone, explicit channels pass
    through unchanged and ``'auto'`` is an error that says so.
    """

    def __init__(self, backbone: dict, decode_head: dict, neck=None, auxiliary_head=None, **kwargs):
        parts = copy.deepcopy(dict(backbone=backbone, decode_head=decode_head, neck=neck,
                                   auxiliary_head=auxiliary_head))
        resolve_head_channels(parts)
        super().__init__(backbone=backbone, decode_head=parts['decode_head'], neck=parts['neck'],
                         auxiliary_head=parts['auxiliary_head'], **kwargs)
