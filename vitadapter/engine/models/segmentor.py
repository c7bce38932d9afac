"""``ViTEncoderDecoder``: mmseg's ``EncoderDecoder`` that reads the heads' channels off the backbone.

A config can say ``in_channels='auto'`` for whatever reads the backbone (the decode and auxiliary
heads, or a neck such as mmseg's FPN): the segmentor fills it from the backbone's
``feature_info.channels()`` before mmseg builds the heads, and checks explicit values against it.
Because the model resolves its own channels, a config runs unchanged under mmseg's stock
``tools/train.py`` / ``tools/test.py`` (and ``mim train``), vitadapter's tools and plain
``MODELS.build``. Swapping the ViT (``backbone.model_name``) then needs no other edit.

Everything else is mmseg's ``EncoderDecoder``: same arguments, parameters and state_dict keys, so
checkpoints load either way. :func:`check_auto_resolved` (called by vitadapter's tools) stops a
config whose segmentor cannot resolve ``'auto'`` with a message, instead of mmseg's bare
``AssertionError`` deep inside a head.
"""
import copy

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

from .channels import AUTO, backbone_readers, resolve_head_channels


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


def check_auto_resolved(model_cfg: dict) -> None:
    """Raise a ValueError when the config's segmentor will not resolve ``in_channels='auto'``
    (mmseg's own ``EncoderDecoder`` passes the string on to the heads, which fail with a bare
    ``AssertionError``)."""
    autos = [key for key, head in backbone_readers(model_cfg) if head.get('in_channels', AUTO) == AUTO]
    segmentor = MODELS.get(model_cfg.get('type', ''))
    if autos and not (isinstance(segmentor, type) and issubclass(segmentor, ViTEncoderDecoder)):
        raise ValueError(
            f"{', '.join(autos)}: in_channels='auto' is filled from the backbone by vitadapter's "
            f"segmentor, but the model type is {model_cfg.get('type')!r}. Use "
            f"model=dict(type='ViTEncoderDecoder', ...) (mmseg's EncoderDecoder plus the channel "
            f"lookup, same weights), or give the channels explicitly")
