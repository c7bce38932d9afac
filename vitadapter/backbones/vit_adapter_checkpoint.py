"""Official ViT-Adapter segmentation checkpoints -> vitadapter's ViTAdapter on mmseg 1.x.

This module belongs to the ViTAdapter's room: it knows :class:`~vitadapter.backbones.ViTAdapter`'s
attribute names (``trunk.model``, ``spm``, ``interactions``, ``output``); the weights package
(:mod:`vitadapter.weights`) gives it only generic tools (key patterns, the checkpoint error).

The ADE20K UperNet checkpoints published with ViT-Adapter (github.com/czczup/ViT-Adapter) are
whole mmseg 0.x segmentors: ``{'meta': ..., 'state_dict': {backbone.*, decode_head.*,
auxiliary_head.*}, 'optimizer': ...}``. mmseg 1.x's ``UPerHead`` and ``FCNHead`` have the same
parameter names as 0.x, so the heads pass through; the backbone keys are renamed:

===================================================  ==============================================
official (``backbone.`` + ...)                         vitadapter ``ViTAdapter`` (``backbone.`` + ...)
===================================================  ==============================================
``patch_embed.proj.*``, ``pos_embed``, ``cls_token``  ``trunk.model.`` + the same
``blocks.i.gamma1`` / ``gamma2`` (ViT layer scale)   ``trunk.model.blocks.i.ls1.gamma`` / ``ls2.gamma``
``blocks.i.*`` (norms, attention, MLP; BEiT's        ``trunk.model.blocks.i.*`` (timm's names are the
``gamma_1``, ``q_bias``, relative position table)    same); BEiT's ``relative_position_index`` buffer
                                                     is dropped (timm recomputes it)
``level_embed``                                      ``level_embed.weight``
``spm.*``, ``interactions.*``                        the same, except ``ffn.dwconv.dwconv`` ->
                                                     ``ffn.dwconv.conv``
``up.*``; ``norm1`` .. ``norm4``                     ``output.up.*``; ``output.norms.0`` .. ``3``
===================================================  ==============================================

Covered: every checkpoint of the ``ViTAdapter`` class (DeiT-T/S/B and AugReg-T/B/L UperNet on
ADE20K, 512x512) and of ``BEiTAdapter`` (BEiT-L UperNet, 640x640). The matching configs are in
``configs/vit_adapter/`` (``OFFICIAL_CONFIGS`` below).

Use::

    from vitadapter.backbones import convert_official_file
    convert_official_file('upernet_deit_adapter_small_512_160k_ade20k.pth', 'converted.pth')
    # then test CONFIG with converted.pth (or load_from = 'converted.pth' to fine-tune)

or ``vitadapter-convert SRC DST``, which recognises these files. From other code: read the file with
:func:`read_official_checkpoint`, test it with :func:`is_official_vit_adapter`, and hand it to
:func:`convert_official_file` (or :func:`convert_vit_adapter_official` for the state dict alone).
"""
import os
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Mapping, Tuple, Union

import torch

from ..compat import numpy_pickle_globals
from ..weights.formats import key_patterns
from ..weights.reading import CheckpointError

# official checkpoint file -> the vitadapter config that builds the same model
OFFICIAL_CONFIGS = {
    'upernet_deit_adapter_tiny_512_160_ade20k.pth.tar':
        'configs/vit_adapter/upernet_vit-adapter-t-deit_8xb2-160k_ade20k-512x512.py',
    'upernet_deit_adapter_small_512_160k_ade20k.pth':
        'configs/vit_adapter/upernet_vit-adapter-s-deit_8xb2-160k_ade20k-512x512.py',
    'upernet_deit_adapter_base_512_160k_ade20k.pth.tar':
        'configs/vit_adapter/upernet_vit-adapter-b-deit_8xb2-160k_ade20k-512x512.py',
}

HEAD_PREFIXES = ('decode_head.', 'auxiliary_head.')
BLOCK_PARTS = (r'norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2|attn\.q_bias|attn\.v_bias|'
               r'attn\.relative_position_bias_table|gamma_1|gamma_2')
Rule = Tuple[str, Union[str, Callable[[re.Match], str], None]]
# (pattern on the key after 'backbone.', replacement; None = drop the tensor)
BACKBONE_RULES: List[Rule] = [
    (r'^(patch_embed\.proj\.(?:weight|bias)|pos_embed|cls_token)$', r'trunk.model.\1'),
    (r'^blocks\.(\d+)\.gamma([12])$', r'trunk.model.blocks.\1.ls\2.gamma'),
    (rf'^blocks\.(\d+)\.((?:{BLOCK_PARTS})(?:\.weight|\.bias)?)$', r'trunk.model.blocks.\1.\2'),
    (r'^blocks\.\d+\.attn\.relative_position_index$', None),
    (r'^level_embed$', 'level_embed.weight'),
    (r'^(interactions\.\d+\.(?:extractor|extra_extractors\.\d+)\.ffn\.dwconv)\.dwconv\.(weight|bias)$',
     r'\1.conv.\2'),
    (r'^(spm\..+|interactions\..+)$', r'\1'),
    (r'^up\.(weight|bias)$', r'output.up.\1'),
    (r'^norm([1-4])\.(.+)$', lambda m: f'output.norms.{int(m[1]) - 1}.{m[2]}'),
]


def rename_backbone_key(key: str):
    """Official backbone key (without ``backbone.``) -> ours, None to drop it; KeyError if unknown."""
    for pattern, repl in BACKBONE_RULES:
        match = re.match(pattern, key)
        if match:
            if repl is None:
                return None
            return repl(match) if callable(repl) else match.expand(repl)
    raise KeyError(key)


def is_official_vit_adapter(checkpoint: Mapping) -> bool:
    """Whether a loaded checkpoint (or its state dict) is an official ViT-Adapter/BEiT-Adapter
    segmentor: ``backbone.level_embed`` and ``backbone.interactions.*`` keys."""
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, Mapping) else {}
    return isinstance(state, Mapping) and 'backbone.level_embed' in state and any(
        k.startswith('backbone.interactions.') for k in state)


def official_state_dict(checkpoint: Mapping) -> Mapping[str, torch.Tensor]:
    """The segmentor state dict inside an official checkpoint (or the state dict itself)."""
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping) or not any(k.startswith('backbone.') for k in state):
        raise CheckpointError("not an official ViT-Adapter segmentor checkpoint: expected a "
                              "'state_dict' with 'backbone.*' (and 'decode_head.*') keys")
    return state


def convert_vit_adapter_official(checkpoint: Mapping) -> Dict[str, torch.Tensor]:
    """Official ViT-Adapter / BEiT-Adapter segmentor checkpoint (the loaded file, or its
    ``state_dict``) -> the state dict of an mmseg 1.x ``EncoderDecoder`` with vitadapter's
    ``ViTAdapter`` backbone. Heads pass through; unknown backbone keys raise."""
    state = official_state_dict(checkpoint)
    converted: Dict[str, torch.Tensor] = OrderedDict()
    unknown = []
    for key, value in state.items():
        if key.startswith(HEAD_PREFIXES):
            converted[key] = value
            continue
        if not key.startswith('backbone.'):
            unknown.append(key)
            continue
        try:
            new = rename_backbone_key(key[len('backbone.'):])
        except KeyError:
            unknown.append(key)
            continue
        if new is not None:
            converted['backbone.' + new] = value
    if unknown:
        raise CheckpointError(f"{len(unknown)} keys are not part of an official ViT-Adapter/BEiT-Adapter "
                              f"UperNet checkpoint (is it another model?): {key_patterns(unknown, limit=8)}")
    return converted


def describe_official(checkpoint: Mapping) -> Dict[str, object]:
    """The architecture an official checkpoint holds, read from its shapes: embed_dim, depth,
    interactions, extra extractors, deformable value ratio, position grid, layer scale, BEiT."""
    state = official_state_dict(checkpoint)
    dim = state['backbone.level_embed'].shape[1]
    blocks = {int(k.split('.')[2]) for k in state if k.startswith('backbone.blocks.')}
    interactions = {int(k.split('.')[2]) for k in state if k.startswith('backbone.interactions.')}
    value = state['backbone.interactions.0.injector.attn.value_proj.weight']
    pos = state.get('backbone.pos_embed')
    grid = int(round((pos.shape[1] - 1) ** 0.5)) if pos is not None else None
    return dict(
        embed_dim=int(dim), depth=len(blocks), interactions=len(interactions),
        deform_ratio=value.shape[0] / dim,
        extra_extractors=len({k.split('.')[4] for k in state if '.extra_extractors.' in k}),
        with_cffn='backbone.interactions.0.extractor.ffn.fc1.weight' in state,
        pos_embed_grid=grid, layer_scale='backbone.blocks.0.gamma1' in state,
        beit='backbone.cls_token' in state)


def read_official_checkpoint(path: str) -> dict:
    """Read an official checkpoint without unpickling code (``weights_only``; numpy scalars in the
    mmcv 1.x ``meta`` are allowed)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"official checkpoint {path!r} does not exist")
    try:
        with torch.serialization.safe_globals(numpy_pickle_globals()):
            return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"could not read {path!r} safely: {type(err).__name__}: {str(err).splitlines()[0]}. "
            f"Official checkpoints hold tensors, numbers and strings; re-save only its "
            f"'state_dict' with torch.save if it holds other objects") from err


def converted_meta(checkpoint: Mapping, source: str) -> dict:
    """mmseg 1.x ``meta``: ``dataset_meta`` (classes, palette) from the 0.x ``CLASSES``/``PALETTE``."""
    old = checkpoint.get('meta', {}) if isinstance(checkpoint, Mapping) else {}
    meta = dict(converted_from=os.path.basename(source), converter='vitadapter.backbones.vit_adapter_checkpoint')
    if isinstance(old, Mapping) and old.get('CLASSES') is not None:
        meta['dataset_meta'] = dict(classes=tuple(old['CLASSES']),
                                    palette=[list(map(int, c)) for c in old.get('PALETTE') or []])
    return meta


def convert_official_file(src: str, dst: str) -> Dict[str, object]:
    """Read an official checkpoint file, convert it, save ``{'state_dict', 'meta'}`` to ``dst``
    (for mmengine's ``load_from`` / ``load_checkpoint``). Returns :func:`describe_official`'s
    summary plus the number of tensors written."""
    checkpoint = read_official_checkpoint(src)
    state = convert_vit_adapter_official(checkpoint)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    torch.save(dict(state_dict=state, meta=converted_meta(checkpoint, src)), dst)
    return dict(describe_official(checkpoint), tensors=len(state))
