"""Loading any supported checkpoint into a timm ViT, with one compact report.

The steps, each in its own module:

1. read the file or Hugging Face folder safely (:mod:`.reading`);
2. take the ViT out of larger checkpoints and recognise its layout (:mod:`.formats`);
3. convert it to timm's layout (:mod:`.convert_hf`, :mod:`.convert_mm`, :mod:`.convert_timm_family`,
   :mod:`.convert_dinov3`) and check it fits the model's variant (:attr:`WeightFormat.fit_model`);
4. let the timm model's own ``checkpoint_filter_fn`` adapt it (original DINOv2 keys, position
   embeddings resized to the model's grid with ``resample_abs_pos_embed``, patch embeddings to its
   patch size with ``resample_patch_embed``), so what timm can load, vitadapter loads the same way;
5. load it and report: loaded N tensors, resized which, missing which, unexpected which, dropped
   which and why (HF pooler, decode heads...), grouped by pattern.

By default a checkpoint that leaves tensors of the model as initialised is a :class:`CheckpointError`
(its ``report`` attribute holds the :class:`LoadReport`), except the classifier head's and what the
caller prunes; ``strict=False`` (``strict_load=False`` on the backbones) loads partially on purpose.
"""
import inspect
import math
import os
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ..compat import timm_pretrained_source
from .formats import FORMATS_BY_NAME, UNKNOWN, WeightFormat, describe_keys, detect_format, key_patterns, \
    split_vit, unknown_layout_error
from .interpolation import POS_EMBED_INTERPOLATIONS, check_interpolation
from .reading import Checkpoint, CheckpointError, read_checkpoint

HEAD_PREFIXES = ('head.', 'fc_norm.', 'attn_pool.', 'head_drop.')
OUTSIDE_VIT = 'outside the ViT'

group_keys = key_patterns  # the name this module has always exported


def pruned_key_prefixes(num_blocks: int, last_block: int, prune_norm: bool) -> Tuple[str, ...]:
    """The timm-layout key prefixes a model pruned to ``blocks[:last_block + 1]`` (and without its
    final norm when ``prune_norm``) no longer has: a checkpoint may lack them (``optional=``)."""
    return tuple(f'blocks.{i}.' for i in range(last_block + 1, num_blocks)) + (('norm.',) if prune_norm else ())


def needed_missing(missing: Sequence[str], optional: Sequence[str] = ()) -> List[str]:
    """The missing keys the model needs: all but the classifier head's and those under ``optional``
    prefixes (parts the caller prunes)."""
    skip = HEAD_PREFIXES + tuple(optional)
    return [k for k in missing if not k.startswith(skip)]


def model_title(model: nn.Module) -> str:
    """'timm's vit_small_patch16_224 (VisionTransformer)', or the class name alone."""
    name = (getattr(model, 'pretrained_cfg', None) or {}).get('architecture')
    return f"timm's {name} ({type(model).__name__})" if name else type(model).__name__


def wrong_variant_error(source: str, fmt: WeightFormat, problems: Sequence[str]) -> CheckpointError:
    """The error for weights that need another variant of the model (``WeightFormat.fit_model``)."""
    return CheckpointError(f"{source} ({fmt.title} layout) does not fit the model: " + '; '.join(problems)
                           + ". (strict_load=False loads it anyway; the load report then lists what is lost)")


def incomplete_error(source: str, fmt: WeightFormat, state_dict: Mapping[str, torch.Tensor],
                     model: nn.Module, missing: Sequence[str]) -> CheckpointError:
    """The error for a checkpoint that leaves trunk tensors of ``model`` as initialised."""
    return CheckpointError(
        f"{source} leaves {len(missing)} of the model's tensors as initialised: {group_keys(missing, 8)}. "
        f"The checkpoint was read as the {fmt.title} layout and holds {describe_keys(state_dict)}; "
        f"the model is {model_title(model)}. Choose the checkpoint or model that "
        f"match, or load partially on purpose with strict_load=False (load_checkpoint(strict=False)): "
        f"the load report then lists what stays initialised")


@dataclass
class LoadReport:
    """What a checkpoint load did, in a form that prints as a few lines.

    source: the path. format: the layout recognised (e.g. 'Hugging Face Dinov2Model').
    loaded: tensors put into the model. resized: keys resampled to the model's grid / patch size.
    missing: model tensors the checkpoint lacks (left as initialised). unexpected: checkpoint
    tensors the model has no place for. ignored: classifier head tensors. dropped: reason -> keys
    removed on purpose (HF pooler, mask token, decode heads...). pos_embed_interp: how the model
    interpolates its position embeddings at other input sizes (see
    :mod:`vitadapter.weights.interpolation`). notes: what else the user should know (a LayerNorm
    epsilon of the source that differs from the model's, a bias the source does not have).
    """
    source: str
    loaded: int = 0
    resized: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)
    format: str = 'timm'
    dropped: Dict[str, List[str]] = field(default_factory=dict)
    pos_embed_interp: str = 'timm'
    notes: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"loaded {self.loaded} tensors from {self.source}"
                 + (f" ({self.format} layout)" if self.format != 'timm' else '')]
        if self.pos_embed_interp != 'timm':
            lines.append(f"  position embeddings at other sizes: "
                         f"{POS_EMBED_INTERPOLATIONS[self.pos_embed_interp].description}")
        for name, keys in (('resized', self.resized), ('missing (left as initialised)', self.missing),
                           ('unexpected (not used)', self.unexpected),
                           ('ignored (classifier head)', self.ignored)):
            if keys:
                lines.append(f"  {name}: {len(keys)}: {group_keys(keys)}")
        for reason, keys in self.dropped.items():
            lines.append(f"  dropped, {reason}: {len(keys)}: {group_keys(keys, limit=4)}")
        lines += [f"  note: {note}" for note in self.notes]
        return '\n'.join(lines)


def config_notes(hf_config: Optional[dict], model: nn.Module) -> List[str]:
    """What a Hugging Face ``config.json`` says that the weights cannot: a LayerNorm epsilon
    other than the timm model's (HF ``ViTConfig`` defaults to 1e-12; timm and the original JAX
    ViT use 1e-6; features then differ slightly, ~1e-5 relative), a RoPE base (DINOv3
    ``rope_theta``) other than the model's."""
    notes = []
    eps = (hf_config or {}).get('layer_norm_eps')
    norm = next((m for m in model.modules() if isinstance(m, nn.LayerNorm)), None)
    if eps is not None and norm is not None and not math.isclose(eps, norm.eps, rel_tol=1e-3):
        notes.append(f"the Hugging Face config has layer_norm_eps={eps:g}; the timm model's LayerNorms use "
                     f"eps={norm.eps:g} (features differ slightly; timm.create_model(..., norm_layer=...) "
                     f"can change it)")
    theta = (hf_config or {}).get('rope_theta')
    temperature = getattr(getattr(model, 'rope', None), 'temperature', None)
    if theta is not None and temperature is not None and not math.isclose(theta, temperature, rel_tol=1e-6):
        notes.append(f"the Hugging Face config has rope_theta={theta:g}; the timm model's RoPE uses "
                     f"{temperature:g} (features differ; timm.create_model(..., rope_temperature=...) "
                     f"can change it)")
    return notes


# Hugging Face activation names -> (torch module class, GELU's ``approximate``) they compute
HF_ACTIVATIONS = {'gelu': (nn.GELU, 'none'), 'gelu_pytorch_tanh': (nn.GELU, 'tanh'),
                  'gelu_new': (nn.GELU, 'tanh'), 'silu': (nn.SiLU, None), 'swish': (nn.SiLU, None)}


def _model_activation(model: nn.Module):
    """(class, approximate) of the activation in the first block's MLP (SwiGLU: its gate's)."""
    mlp = getattr(model.blocks[0], 'mlp', None) if len(getattr(model, 'blocks', [])) else None
    act = getattr(mlp, 'act', None)
    if act is None:
        return None
    return type(act), getattr(act, 'approximate', None) if isinstance(act, nn.GELU) else None


def hf_config_problems(hf_config: Optional[dict], model: nn.Module) -> List[str]:
    """What a Hugging Face ``config.json`` says the model computes and the timm model cannot: an
    MLP (or gated MLP) activation other than the timm model's (timm's SwiGLU gates with SiLU, its
    MLP uses GELU); the weights would load and give other features."""
    config = hf_config or {}
    # HF's Dinov2 SwiGLU FFN gates with SiLU whatever hidden_act says; DINOv3's gated MLP uses it
    act = 'silu' if config.get('use_swiglu_ffn') else config.get('hidden_act')
    have = _model_activation(model)
    if act is None or have is None:
        return []
    kind = 'gated MLP (SwiGLU)' if config.get('use_gated_mlp') or config.get('use_swiglu_ffn') else 'MLP'
    want = HF_ACTIVATIONS.get(act)
    if want == have:
        return []
    have_name = f"{have[0].__name__}" + (f"(approximate={have[1]!r})" if have[0] is nn.GELU else '')
    return [f"its config.json says the {kind} computes hidden_act={act!r}, but the timm model's "
            f"{kind} computes {have_name}: timm has no {kind} with {act!r}, so the features would "
            f"differ; convert only a checkpoint whose activation timm has (a gated MLP: silu; an "
            f"MLP: gelu)"]


def _filter_fn(model: nn.Module):
    return getattr(sys.modules[type(model).__module__], 'checkpoint_filter_fn', None)


def apply_timm_filter(model: nn.Module, state_dict: Dict[str, torch.Tensor],
                      pos_embed_interp: str = 'timm') -> Dict[str, torch.Tensor]:
    """Run the model module's ``checkpoint_filter_fn`` (if any) on a copy of ``state_dict``,
    resizing with the antialias setting of ``pos_embed_interp``."""
    filter_fn = _filter_fn(model)
    if filter_fn is None:
        return dict(state_dict)
    kwargs = {}
    params = inspect.signature(filter_fn).parameters
    if 'antialias' in params:
        kwargs['antialias'] = check_interpolation(pos_embed_interp).antialias
    return filter_fn(OrderedDict(state_dict), model, **kwargs)


def _grid_positions(model: nn.Module, num_positions: int, fmt: WeightFormat) -> int:
    """How many of a checkpoint's ``num_positions`` position embeddings are patch-grid ones."""
    if fmt.name not in ('timm', 'unknown'):
        return num_positions - 1  # every other source stores the class token's position
    prefix = 0 if getattr(model, 'no_embed_class', False) else int(getattr(model, 'num_prefix_tokens', 1))
    return num_positions - prefix


def load_into_timm_model(model: nn.Module, state_dict: Dict[str, torch.Tensor], source: str,
                         strict: bool = False, pos_embed_interp: str = 'timm',
                         fmt: WeightFormat = FORMATS_BY_NAME['timm']) -> LoadReport:
    """Load a timm-layout state dict (or one the model's ``checkpoint_filter_fn`` converts) into a
    timm model, before any pruning.

    Head keys are ignored (the trunk has no classifier). ``strict=True`` raises when other keys
    are missing (before loading anything). The model's filter resizes position and patch
    embeddings to its grid and patch size (bicubic; antialias as ``pos_embed_interp`` says).
    """
    report, usable, filtered = plan_timm_load(model, state_dict, source, pos_embed_interp, fmt)
    missing = needed_missing(report.missing)
    if strict and missing:
        raise incomplete_error(source, fmt, filtered, model, missing)
    model.load_state_dict(usable, strict=False)
    return report


def plan_timm_load(model: nn.Module, state_dict: Dict[str, torch.Tensor], source: str,
                   pos_embed_interp: str, fmt: WeightFormat) -> tuple:
    """(report, the tensors to load, the filtered state dict): what loading would do, with the
    model untouched; a shape that does not fit raises :class:`CheckpointError`."""
    original_shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    state_dict = apply_timm_filter(model, state_dict, pos_embed_interp)
    own = model.state_dict()
    report = LoadReport(source=source, format=fmt.title if fmt.name != 'timm' else 'timm',
                        pos_embed_interp=pos_embed_interp)
    report.ignored = [k for k in state_dict if k.startswith(HEAD_PREFIXES) and k not in own]
    usable = {k: v for k, v in state_dict.items() if k in own and k not in report.ignored}
    report.unexpected = [k for k in state_dict if k not in own and k not in report.ignored]
    report.missing = [k for k in own if k not in usable]
    for k, v in usable.items():
        if k == 'pos_embed' and k in original_shapes:
            grid = getattr(getattr(model, 'patch_embed', None), 'grid_size', None)
            before = _grid_positions(model, original_shapes[k][1], fmt)
            if grid is not None and before != grid[0] * grid[1]:
                report.resized.append(k)
        elif k in original_shapes and original_shapes[k] != tuple(v.shape):
            report.resized.append(k)
    wrong = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
             for k, v in usable.items() if tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        raise CheckpointError(f"{source} does not fit {type(model).__name__} (is it for another "
                              f"model size?): {len(wrong)} shape mismatches, e.g. " + '; '.join(wrong[:3]))
    report.loaded = len(usable)
    return report, usable, state_dict


CheckpointLike = Union[str, os.PathLike, Checkpoint, Mapping[str, torch.Tensor]]


def _as_checkpoint(checkpoint: CheckpointLike) -> Checkpoint:
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    if isinstance(checkpoint, Mapping):
        return Checkpoint(OrderedDict(checkpoint), 'state dict')
    return read_checkpoint(checkpoint)


def load_checkpoint(model: nn.Module, checkpoint: CheckpointLike, strict: bool = True,
                    pos_embed_interp: Optional[str] = None, prefix: Optional[str] = None,
                    optional: Sequence[str] = ()) -> LoadReport:
    """Load weights from any supported source into a timm ViT (before any pruning).

    checkpoint: a weights file (.pth/.pt/.bin/.safetensors), a Hugging Face model folder, a
    :class:`Checkpoint` or a state dict. Its layout is recognised (see :data:`FORMATS`), the ViT
    is taken out of segmentor/classifier checkpoints (``prefix`` forces where it starts) and
    converted to timm's layout. pos_embed_interp: the interpolation rule; None follows the source
    (:attr:`WeightFormat.pos_embed_interp`). Position embeddings stored for another grid than the
    model's are resized now with the rule's antialias setting (bicubic to the size; DINOv2's
    scale-factor offset has no load-time counterpart). The report records the rule so the model
    can interpolate the same way at run time (``TimmViTTrunk`` does).
    An unknown layout of which nothing fits the model raises :class:`CheckpointError` listing what
    the checkpoint holds; so do weights that need another variant of the model (DINOv3 with q/v
    biases into a model without them, SwiGLU into MLP: see :attr:`WeightFormat.fit_model`), naming
    the model to use (strict=False loads them anyway; the report then says what was lost).
    strict: a checkpoint that leaves tensors of the model as initialised raises
    :class:`CheckpointError` (saying what it holds and what was expected); classifier head tensors
    and those under the ``optional`` key prefixes (parts the caller prunes, see
    :func:`pruned_key_prefixes`) may be absent. strict=False loads what fits; the report lists the rest.
    """
    ck = _as_checkpoint(checkpoint)
    vit, found_prefix, outside = split_vit(ck.state_dict, prefix)
    fmt = detect_format(vit)
    conversion = fmt.convert(vit)
    problems = fmt.fit_model(conversion, model) if fmt.fit_model is not None else []
    if problems and strict:
        raise wrong_variant_error(ck.source, fmt, problems)
    unrepresentable = hf_config_problems(ck.hf_config, model)
    if unrepresentable:  # not a variant to choose: no timm model computes it (strict or not)
        raise CheckpointError(f"{ck.source} cannot be loaded faithfully: " + '; '.join(unrepresentable))
    conversion.notes += problems
    interp = pos_embed_interp or fmt.pos_embed_interp
    check_interpolation(interp)
    report, usable, _ = plan_timm_load(model, conversion.state_dict, ck.source, interp, fmt)
    if report.loaded == 0:
        if fmt is UNKNOWN:
            raise unknown_layout_error(ck.source, ck.state_dict, type(model).__name__)
        raise CheckpointError(
            f"{ck.source} is a {fmt.title} checkpoint but none of its tensors fit "
            f"{type(model).__name__} (it has {group_keys(report.unexpected, limit=6)}): choose a timm "
            f"model of the same family")
    if outside:
        report.dropped[f"{OUTSIDE_VIT} (which is under {found_prefix!r})"] = outside
    report.dropped.update(conversion.dropped)
    report.notes += conversion.notes + config_notes(ck.hf_config, model)
    missing = needed_missing(report.missing, optional)
    if strict and missing:  # refused before anything is loaded: the model stays as it was
        error = incomplete_error(ck.source, fmt, vit, model, missing)
        error.report = report
        raise error
    model.load_state_dict(usable, strict=False)
    return report


def pretrained_source(model: nn.Module) -> str:
    """Where timm took a model's pretrained weights from, as timm resolves it: 'hf-hub:timm/NAME',
    a URL or a local file (``pretrained_cfg_overlay=dict(file=...)``)."""
    cfg = dict(getattr(model, 'pretrained_cfg', None) or {})
    kind, location = timm_pretrained_source(cfg)  # timm's own order of sources
    if isinstance(location, tuple):  # (hub id, file name)
        location = '/'.join(location)
    if kind == 'state_dict':
        location = 'a state dict given in pretrained_cfg'
    name = '.'.join(p for p in (cfg.get('architecture'), cfg.get('tag')) if p)
    where = f"hf-hub:{location}" if kind == 'hf-hub' else str(location or 'an unknown source')
    return f"timm's pretrained {name or type(model).__name__} ({where})"


def pretrained_report(model: nn.Module) -> LoadReport:
    """The :class:`LoadReport` of a model timm built with ``pretrained=True``: timm loaded every
    tensor of it strictly (its classifier head aside), through its own checkpoint filter."""
    return LoadReport(source=pretrained_source(model), loaded=len(model.state_dict()))

