"""``in_channels='auto'``: the channels of whatever reads a vitadapter backbone, from its ``feature_info``.

:class:`~vitadapter.engine.models.segmentor.ViTEncoderDecoder` calls :func:`resolve_head_channels` on its
own arguments before mmseg builds the heads.
"""
import copy
from typing import List, Sequence

from ...meta_build import build_structure

AUTO = 'auto'


def backbone_channels(backbone_cfg: dict) -> List[int]:
    """``feature_info.channels()`` of a vitadapter backbone config, built on the meta device where timm allows it
    (no memory, no weights loaded)."""
    from mmseg.registry import MODELS
    cfg = copy.deepcopy(dict(backbone_cfg))
    cfg.update(pretrained=False, checkpoint=None)
    backbone = build_structure(lambda: MODELS.build(cfg))
    return list(backbone.feature_info.channels())


def _head_channels(head: dict, channels: Sequence[int], key: str) -> None:
    in_index = head.get('in_index')
    if in_index is None:  # necks (mmseg's FPN) read every level
        head.pop('in_index', None)
        in_index = list(range(len(channels)))
    indices = in_index if isinstance(in_index, (list, tuple)) else [in_index]
    if any(not -len(channels) <= i < len(channels) for i in indices):
        raise ValueError(f"{key}.in_index={in_index} but the backbone has {len(channels)} levels")
    wanted = [channels[i] for i in indices]
    expected = wanted if isinstance(in_index, (list, tuple)) else wanted[0]
    given = head.get('in_channels', AUTO)
    if given == AUTO or given is None:
        head['in_channels'] = expected
    elif (list(given) if isinstance(given, (list, tuple)) else given) != expected:
        raise ValueError(
            f"{key}.in_channels={given} does not match the backbone: its feature_info.channels() "
            f"at in_index={in_index} are {expected}. Set {key}.in_channels='auto' (filled from "
            f"feature_info) or {expected}")


def backbone_readers(model_cfg: dict) -> list:
    """(name, config) of what reads the backbone: the neck when it takes ``in_channels`` (mmseg's
    FPN), else, without a neck, the decode and auxiliary heads."""
    heads = []
    neck = model_cfg.get('neck')
    if neck and 'in_channels' in neck:  # e.g. FPN; mmseg's Feature2Pyramid takes embed_dim instead
        heads.append(('neck', neck))
    for key in ('decode_head', 'auxiliary_head'):
        head = model_cfg.get(key)
        if model_cfg.get('neck'):
            break  # the heads read the neck's outputs, whose channels the config states
        if isinstance(head, (list, tuple)):
            heads += [(f'{key}[{i}]', h) for i, h in enumerate(head)]
        elif head:
            heads.append((key, head))
    return heads


def resolve_head_channels(model_cfg: dict) -> None:
    """Fill or check ``in_channels`` of what reads the backbone (in place): the neck when there is
    one (e.g. mmseg's FPN: a list, one per level), else the decode and auxiliary heads. Explicit
    values must equal the backbone's ``feature_info.channels()`` at the head's ``in_index``."""
    heads = backbone_readers(model_cfg)
    if not heads or 'backbone' not in model_cfg:
        return
    from mmseg.registry import MODELS
    backbone_cls = MODELS.get(model_cfg['backbone'].get('type'))
    if backbone_cls is None or not backbone_cls.__module__.startswith('vitadapter.'):
        if any(h.get('in_channels', AUTO) in (AUTO, None) for _, h in heads):
            raise ValueError(f"in_channels='auto' needs a vitadapter backbone, got backbone type "
                             f"{model_cfg['backbone'].get('type')!r}: give the channels explicitly")
        return  # another library's backbone: its config states its channels
    channels = backbone_channels(model_cfg['backbone'])
    for key, head in heads:
        _head_channels(head, channels, key)

