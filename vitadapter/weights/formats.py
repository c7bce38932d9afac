"""Recognising where a checkpoint comes from, and taking the ViT out of larger checkpoints.

:func:`split_vit` finds the ViT inside a checkpoint by its patch embedding (timm
``patch_embed.proj``, OpenMMLab ``patch_embed.projection``, HF ``embeddings.patch_embeddings``)
and strips the prefix before it: ``backbone.`` of an mmseg segmentor, ``backbone.trunk.model.`` of
a vitadapter segmentor, ``vit.`` of an HF classifier. Everything else (decode heads, necks...) is
dropped and reported. :func:`detect_format` then names the layout from its keys.
"""
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch.nn as nn

from .convert_dinov3 import convert_dinov3, convert_hf_dinov3, dinov3_shell, fit_dinov3_model
from .convert_hf import convert_hf_dinov2, convert_hf_vit
from .convert_mm import convert_openmmlab_vit
from .convert_timm_family import convert_beit, convert_mae, dinov2_shell, mark_dinov2
from .reading import CheckpointError
from .renaming import Conversion, StateDict

PATCH_EMBED_KEYS = ('patch_embed.proj.weight', 'patch_embed.projection.weight',
                    'embeddings.patch_embeddings.projection.weight', 'embeddings.patch_embeddings.weight')
CONVERTER = 'vitadapter-convert'  # the console command (vitadapter.convert); Python: convert_checkpoint


@dataclass(frozen=True)
class WeightFormat:
    """A checkpoint layout: how to recognise it, convert it, and interpolate its position grid.

    convert: state dict -> :class:`Conversion` in timm layout, or in a layout the timm model's own
    ``checkpoint_filter_fn`` converts (official DINOv2/DINOv3: then ``shell`` is given).
    pos_embed_interp: the interpolation the original implementation uses at other input sizes
    (a name in :data:`vitadapter.weights.interpolation.POS_EMBED_INTERPOLATIONS`).
    fit_model: (conversion, timm model) -> the problems that make the converted weights need
    another variant of the model (each naming the model to use); it may adapt the conversion to
    the model (recording what it drops). None: no check beyond the key and shape checks.
    shell: state dict -> a weightless timm model of the checkpoint's own geometry, whose
    ``checkpoint_filter_fn`` finishes the conversion when no model is given (export).
    """
    name: str
    title: str
    detect: Callable[[List[str]], bool]
    convert: Callable[[StateDict], Conversion]
    pos_embed_interp: str
    fit_model: Optional[Callable[[Conversion, nn.Module], List[str]]] = None
    shell: Optional[Callable[[StateDict], nn.Module]] = None


def _has(*names: str) -> Callable[[List[str]], bool]:
    return lambda keys: all(n in keys for n in names)


def _any_match(pattern: str) -> Callable[[List[str]], bool]:
    regex = re.compile(pattern)
    return lambda keys: any(regex.match(k) for k in keys)


def _all(*tests: Callable[[List[str]], bool]) -> Callable[[List[str]], bool]:
    return lambda keys: all(test(keys) for test in tests)


def _keep(state_dict: StateDict) -> Conversion:
    return Conversion(state_dict)


_HF_LAYER = r'encoder\.layer\.\d+\.'


# Most specific first: the first format whose test passes names the checkpoint. Each test asks for
# the keys that make the layout what it is (a shared name such as ``register_tokens`` is not enough).
FORMATS: Tuple[WeightFormat, ...] = (
    WeightFormat('hf-dinov3', 'Hugging Face DINOv3ViTModel',
                 _any_match(r'(model\.)?layer\.\d+\.(attention\.[qkvo]_proj|mlp\.(up|down|gate)_proj)\.weight'),
                 convert_hf_dinov3, 'timm', fit_model=fit_dinov3_model,
                 shell=dinov3_shell),
    WeightFormat('hf-dinov2-reg', 'Hugging Face Dinov2WithRegistersModel',
                 _all(_has('embeddings.register_tokens'),
                      _any_match(_HF_LAYER + r'(layer_scale1\.lambda1|norm1\.weight)')),
                 convert_hf_dinov2, 'timm', shell=dinov2_shell),
    WeightFormat('hf-dinov2', 'Hugging Face Dinov2Model',
                 _any_match(_HF_LAYER + r'(layer_scale1\.lambda1|norm1\.weight)'),
                 convert_hf_dinov2, 'bicubic', shell=dinov2_shell),
    WeightFormat('hf-vit', 'Hugging Face ViTModel',
                 _any_match(r'(encoder\.layer|layers)\.\d+\.layernorm_before\.weight'), convert_hf_vit, 'bicubic'),
    WeightFormat('mmseg-vit', 'mmsegmentation VisionTransformer',
                 _any_match(r'layers\.\d+\.attn\.attn\.in_proj_weight'), convert_openmmlab_vit, 'bicubic'),
    WeightFormat('mmpretrain-vit', 'mmpretrain VisionTransformer (or mmseg BEiT)',
                 _any_match(r'layers\.\d+\.attn\.qkv\.weight'), convert_openmmlab_vit, 'bicubic'),
    WeightFormat('mae', 'MAE pretraining (facebookresearch/mae)',
                 _any_match(r'decoder_(embed|blocks|pred)'), convert_mae, 'bicubic'),
    # no absolute position embeddings (RoPE on normalised patch coordinates): nothing to interpolate
    WeightFormat('dinov3', 'DINOv3 (facebookresearch)',
                 _all(_has('storage_tokens'), _any_match(r'blocks\.\d+\.attn\.qkv\.weight')),
                 convert_dinov3, 'timm', fit_model=fit_dinov3_model,
                 shell=dinov3_shell),
    WeightFormat('dinov2-reg', 'DINOv2 with registers (facebookresearch)',
                 _has('register_tokens', 'pos_embed'), mark_dinov2, 'timm',
                 shell=dinov2_shell),
    WeightFormat('dinov2', 'DINOv2 (facebookresearch)',
                 lambda keys: 'mask_token' in keys and 'pos_embed' in keys and
                 any(k.startswith('blocks.') for k in keys), mark_dinov2, 'dinov2',
                 shell=dinov2_shell),
    WeightFormat('beit', 'BEiT (microsoft/unilm)',  # (timm's DINOv3 _qkvb has q_bias and registers)
                 lambda keys: 'reg_token' not in keys and _any_match(
                     r'(blocks\.\d+\.attn\.(q_bias|relative_position_bias_table)|'
                     r'rel_pos_bias\.relative_position_bias_table|lm_head\.)')(keys),
                 convert_beit, 'timm'),
    WeightFormat('timm', 'timm', _has('patch_embed.proj.weight'), _keep, 'timm'),
)
FORMATS_BY_NAME: Dict[str, WeightFormat] = {f.name: f for f in FORMATS}
# Layouts no test above recognises; the timm model's checkpoint_filter_fn may still (OpenAI CLIP...).
UNKNOWN = WeightFormat('unknown', 'an unrecognised layout', lambda keys: True, _keep, 'timm')


def key_patterns(keys: List[str], limit: int = 10) -> str:
    """'blocks.0.norm1.weight', 'blocks.1.norm1.weight' -> 'blocks.*.norm1.weight (x2)'."""
    groups: Dict[str, int] = OrderedDict()
    for key in keys:
        pattern = re.sub(r'\.\d+\.', '.*.', key)
        groups[pattern] = groups.get(pattern, 0) + 1
    items = [f"{p} (x{n})" if n > 1 else p for p, n in groups.items()]
    more = f", ... {len(items) - limit} more" if len(items) > limit else ''
    return ', '.join(items[:limit]) + more


def split_vit(state_dict: StateDict, prefix: Optional[str] = None) -> Tuple[StateDict, str, List[str]]:
    """Take the ViT out of a checkpoint: (its tensors, unprefixed; the prefix; the other keys).

    prefix: where the ViT's keys start ('backbone.'); None finds it from the patch embedding.
    A checkpoint holding several ViTs (a teacher and a student) needs ``prefix``.
    """
    if prefix is None:
        found = sorted({k[:-len(marker)] for k in state_dict for marker in PATCH_EMBED_KEYS
                        if k.endswith(marker) and (k == marker or k[-len(marker) - 1] == '.')})
        if len(found) > 1:
            raise CheckpointError(
                f"the checkpoint holds {len(found)} ViTs (patch embeddings under prefixes "
                f"{found}); take one out with `{CONVERTER} FILE OUT.safetensors --prefix PREFIX` "
                f"and load OUT.safetensors (or vitadapter.weights.load_checkpoint(model, FILE, prefix=PREFIX))")
        prefix = found[0] if found else ''
    if not prefix:
        return OrderedDict(state_dict), '', []
    inner = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items() if k.startswith(prefix))
    if not inner:
        raise CheckpointError(f"no key of the checkpoint starts with prefix {prefix!r}; it has "
                              f"{key_patterns(list(state_dict), 6)}")
    return inner, prefix, [k for k in state_dict if not k.startswith(prefix)]


def detect_format(state_dict: StateDict) -> WeightFormat:
    """The :class:`WeightFormat` of a (ViT-only) state dict; :data:`UNKNOWN` when none fits."""
    keys = list(state_dict)
    return next((f for f in FORMATS if f.detect(keys)), UNKNOWN)


def unknown_layout_error(source: str, state_dict: StateDict, model_name: str) -> CheckpointError:
    """The error for a checkpoint that no converter (nor the timm model's filter) understood."""
    top = OrderedDict()
    for k in state_dict:
        top[k.split('.')[0]] = top.get(k.split('.')[0], 0) + 1
    seen = ', '.join(f"{name} ({n})" for name, n in list(top.items())[:12])
    known = ', '.join(f.title for f in FORMATS)
    return CheckpointError(
        f"{source}: unknown checkpoint layout for {model_name}, none of its {len(state_dict)} "
        f"tensors fit. Seen: top-level names {seen}; keys {key_patterns(list(state_dict), 8)}. "
        f"Supported layouts: {known}; inside a segmentor or classifier checkpoint too. If the ViT "
        f"sits under an unusual prefix, take it out with `{CONVERTER} FILE OUT.safetensors --prefix "
        f"PREFIX` (or vitadapter.weights.load_checkpoint(model, FILE, prefix=PREFIX))")


def describe_keys(state_dict: StateDict, limit: int = 8) -> str:
    """'66 tensors: embeddings.cls_token, layer.*.norm1.weight (x12), ...': what a checkpoint holds."""
    return f"{len(state_dict)} tensors: {key_patterns(list(state_dict), limit)}"
