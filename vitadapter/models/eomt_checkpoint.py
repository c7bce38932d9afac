"""EoMT checkpoints of Hugging Face transformers and tue-mps/eomt -> vitadapter's :class:`EoMT`.

This module belongs to the models room: it knows :class:`~vitadapter.models.EoMT`'s parameter
names. The weights package gives it the generic tools (safe reading, renaming, q/k/v fusion, the
DINOv3ViTModel and timm-layout conversions, the load report, the checkpoint error).

Layouts, recognised from the keys (:func:`detect_eomt_layout`):

* ``hf-eomt``: transformers' ``EomtForUniversalSegmentation`` (a ``save_pretrained`` folder or its
  weights file), a DINOv2-style ViT with registers and a patches-only position table;
* ``hf-eomt-dinov3``: transformers' (>= 5) ``EomtDinov3ForUniversalSegmentation``, DINOv3 layers;
* ``tue-mps-dinov2`` / ``tue-mps-dinov3``: a tue-mps/eomt Lightning ``.ckpt`` (its ``state_dict``)
  or the flat ``pytorch_model.bin`` they publish. The encoder is timm's ViT (DINOv2) or transformers'
  ``DINOv3ViTModel`` with ``embeddings`` renamed ``patch_embed`` and ``layer`` renamed ``blocks``
  (their ``models/vit.py``);
* ``vitadapter``: the state dict of this EoMT itself.

==============================  ==========================================  ================================
vitadapter ``EoMT``             transformers                                tue-mps (``network.`` + ...)
==============================  ==========================================  ================================
``trunk.model.*`` (timm ViT)    ``embeddings.*``, ``layers.N.*``,           ``encoder.backbone.*``
                                ``layernorm.*`` (below)
``queries.weight``              ``query.weight``                            ``q.weight``
``head.class_head.*``           ``class_predictor.*``                       ``class_head.*``
``head.mask_head.{0,2,4}.*``    ``mask_head.fc{1,2,3}.*``                   ``mask_head.{0,2,4}.*``
``head.upscale.i.conv{1,2}.*``  ``upscale_block.block.i.conv{1,2}.*``       ``upscale.i.conv{1,2}.*``
``head.upscale.i.norm.*``       ``upscale_block.block.i.layernorm2d.*``     ``upscale.i.norm.*``
``attn_mask_probs``             ``attn_mask_probs``                         ``attn_mask_probs``
dropped                         ``criterion.empty_weight`` (loss weights)   ``encoder.pixel_mean/std``;
                                                                            ``criterion.*`` (no prefix)
==============================  ==========================================  ================================

transformers' DINOv2-style ViT -> timm's ``vit_*_reg4_dinov2`` (at patch 16, as tue-mps builds it):
``embeddings.cls_token`` / ``register_tokens`` -> ``cls_token`` / ``reg_token``;
``embeddings.position_embeddings.weight`` (N, D) -> ``pos_embed`` (1, N, D) (patches only: timm's
``no_embed_class``); ``embeddings.patch_embeddings.projection`` -> ``patch_embed.proj``;
``layers.N.attention.{q,k,v}_proj`` -> ``blocks.N.attn.qkv`` (fused), ``out_proj`` -> ``attn.proj``;
``layer_scale{1,2}.lambda1`` -> ``ls{1,2}.gamma``; ``norm{1,2}``, ``mlp.fc{1,2}`` keep their names,
SwiGLU ``mlp.weights_in/out`` (transformers 5: ``mlp.gate_proj`` + ``up_proj``, ``down_proj``) ->
``mlp.fc1/fc2`` (timm's ``SwiGLUPacked``, gate first); ``layernorm`` -> ``norm``. The DINOv3 ViTs
(transformers' and tue-mps') are renamed to ``DINOv3ViTModel``'s keys and converted by
:func:`vitadapter.weights.convert_checkpoint`.

Delta weights: tue-mps's DINOv3 configs train with ``delta_weights: True``; their checkpoints hold
the encoder as trained minus pretrained weights and everything else as it is.
:func:`load_eomt_checkpoint` adds the pretrained backbone (``delta_base``: any DINOv3 file or folder
vitadapter reads) to the encoder, as tue-mps's loader does. ``attn_mask_probs`` is taken as stored
(0 once annealing is done); a negative one is read as a delta against the 1 tue-mps's model starts
from (its loader adds its freshly built buffers too, which its evaluation never reads: it runs with
``masked_attn_enabled=False``).

Use::

    model = eomt_from_hf('coco_panoptic_eomt_large_640')        # built from config.json, loaded
    model = EoMT('vit_large_patch14_reg4_dinov2', num_classes=133, num_queries=200, img_size=640,
                 patch_size=16)
    report = load_eomt_checkpoint(model, 'eomt_large_640.ckpt')  # strict; print(report)
"""
import functools
import inspect
import math
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Union

import timm
import torch
import torch.nn as nn

from ..layers import num_scale_blocks
from ..weights.conversion import convert_checkpoint
from ..weights.convert_dinov3 import STANDARD_MODELS, ZERO_QV_BIAS
from ..weights.formats import describe_keys, key_patterns
from ..weights.loading import LoadReport, config_notes
from ..weights.reading import Checkpoint, CheckpointError, read_checkpoint
from ..weights.renaming import Conversion, StateDict, fuse_qkv, rename
from .eomt import EoMT

LAYOUTS = {
    'vitadapter': 'vitadapter EoMT',
    'hf-eomt': 'Hugging Face EomtForUniversalSegmentation',
    'hf-eomt-dinov3': 'Hugging Face EomtDinov3ForUniversalSegmentation',
    'tue-mps-dinov2': 'tue-mps/eomt (timm DINOv2 encoder)',
    'tue-mps-dinov3': 'tue-mps/eomt (Hugging Face DINOv3 encoder)',
}
TRUNK = 'trunk.model.'
BACKBONE = 'network.encoder.backbone.'
LOSS_WEIGHTS = 'loss weights (training only)'
NORMALISATION = ("input normalisation (tue-mps's model divides by 255 and normalises with ImageNet's mean "
                 "and std inside; vitadapter's EoMT takes normalised images, as mmseg's data preprocessor "
                 "gives them)")
BASE_EXTRA = 'delta base tensors the EoMT encoder has no place for'
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_QV_BIAS = re.compile(re.escape(TRUNK) + r'blocks\.\d+\.attn\.[qv]_bias')

_L = r'layers\.(\d+)\.'
HF_HEAD_RULES = (
    (r'query\.weight', 'queries.weight'),
    (r'class_predictor\.(weight|bias)', r'head.class_head.\1'),
    (r'mask_head\.fc1\.(weight|bias)', r'head.mask_head.0.\1'),
    (r'mask_head\.fc2\.(weight|bias)', r'head.mask_head.2.\1'),
    (r'mask_head\.fc3\.(weight|bias)', r'head.mask_head.4.\1'),
    (r'upscale_block\.block\.(\d+)\.(conv[12])\.(weight|bias)', r'head.upscale.\1.\2.\3'),
    (r'upscale_block\.block\.(\d+)\.layernorm2d\.(weight|bias)', r'head.upscale.\1.norm.\2'),
)
HF_VIT_RULES = (  # transformers' DINOv2-style EoMT ViT -> timm (after the q/k/v fusion)
    (r'embeddings\.cls_token', 'cls_token'),
    (r'embeddings\.register_tokens', 'reg_token'),
    (r'embeddings\.position_embeddings\.weight', 'pos_embed'),
    (r'embeddings\.patch_embeddings\.projection\.(weight|bias)', r'patch_embed.proj.\1'),
    (_L + r'attention\.out_proj\.(weight|bias)', r'blocks.\1.attn.proj.\2'),
    (_L + r'(norm[12])\.(weight|bias)', r'blocks.\1.\2.\3'),
    (_L + r'layer_scale([12])\.lambda1', r'blocks.\1.ls\2.gamma'),
    (_L + r'mlp\.(fc[12])\.(weight|bias)', r'blocks.\1.mlp.\2.\3'),
    (_L + r'mlp\.weights_in\.(weight|bias)', r'blocks.\1.mlp.fc1.\2'),
    (_L + r'mlp\.(?:weights_out|down_proj)\.(weight|bias)', r'blocks.\1.mlp.fc2.\2'),
    (r'layernorm\.(weight|bias)', r'norm.\1'),
)
HF_DINOV3_RULES = ((_L + r'(.+)', r'layer.\1.\2'), (r'layernorm\.(.+)', r'norm.\1'))  # -> DINOv3ViTModel
TUE_MPS_DINOV3_RULES = ((r'patch_embed\.(.+)', r'embeddings.\1'), (r'blocks\.(\d+)\.(.+)', r'layer.\1.\2'))
TUE_MPS_HEAD_RULES = (
    (r'network\.q\.weight', 'queries.weight'),
    (r'network\.(class_head|mask_head\.\d+|upscale\.\d+\.(?:conv1|conv2|norm))\.(weight|bias)', r'head.\1.\2'),
    (r'network\.attn_mask_probs', 'attn_mask_probs'),
)
DINOV2_NAMES = {384: 'vit_small_patch14_reg4_dinov2', 768: 'vit_base_patch14_reg4_dinov2',
                1024: 'vit_large_patch14_reg4_dinov2'}  # (+ giant, SwiGLU)


@dataclass
class EomtCheckpoint:
    """An EoMT checkpoint in vitadapter's keys (the ViT in timm's layout).

    layout: a key of :data:`LAYOUTS`. hf_config: the ``config.json`` beside it (transformers), else
    None. dropped: reason -> source keys left out on purpose. notes: what else the reading found.
    """
    state_dict: StateDict
    source: str
    layout: str
    hf_config: Optional[dict] = None
    dropped: Dict[str, List[str]] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return LAYOUTS[self.layout]


# ----------------------------------------------------------------------------- layouts
def detect_eomt_layout(state_dict: Mapping[str, torch.Tensor]) -> Optional[str]:
    """The layout (a key of :data:`LAYOUTS`) of an EoMT state dict, None when it is none of them."""
    keys = set(state_dict)
    if 'queries.weight' in keys and any(k.startswith(TRUNK) for k in keys):
        return 'vitadapter'
    if 'network.q.weight' in keys:
        if BACKBONE + 'patch_embed.patch_embeddings.weight' in keys:
            return 'tue-mps-dinov3'
        if BACKBONE + 'patch_embed.proj.weight' in keys:
            return 'tue-mps-dinov2'
    if 'query.weight' in keys and 'class_predictor.weight' in keys:
        if any(re.fullmatch(_L + r'attention\.o_proj\.weight', k) for k in keys):
            return 'hf-eomt-dinov3'
        if any(re.fullmatch(_L + r'attention\.out_proj\.weight', k) for k in keys):
            return 'hf-eomt'
    return None


def unknown_eomt_layout(source: str, state_dict: Mapping[str, torch.Tensor]) -> CheckpointError:
    return CheckpointError(
        f"{source} is no EoMT checkpoint this reader knows: it holds {describe_keys(state_dict)}. "
        f"Supported: {', '.join(LAYOUTS.values())} (queries under 'query.weight', 'network.q.weight' or "
        f"'queries.weight'). A ViT alone (no queries, no mask head) loads into the trunk: "
        f"EoMT(..., checkpoint=PATH)")


def _timm_vit(vit: StateDict, source: str, conv: Conversion) -> StateDict:
    """A ViT in a layout vitadapter.weights converts (DINOv3ViTModel here) -> timm's, prefixed."""
    converted = convert_checkpoint(Checkpoint(OrderedDict(vit), source))
    conv.dropped.update(converted.dropped)
    conv.notes += converted.notes
    return OrderedDict((TRUNK + k, v) for k, v in converted.state_dict.items())


def _split(state_dict: StateDict, prefixes) -> tuple:
    inside = OrderedDict((k, v) for k, v in state_dict.items() if k.startswith(prefixes))
    return inside, OrderedDict((k, v) for k, v in state_dict.items() if not k.startswith(prefixes))


def _pack_swiglu(vit: StateDict) -> StateDict:
    """transformers 5's SwiGLU ``mlp.gate_proj`` + ``mlp.up_proj`` -> the packed ``mlp.weights_in``
    of transformers 4 (gate first: silu(first half) * second half, as timm's SwiGLUPacked)."""
    out = OrderedDict()
    for key, value in vit.items():
        if re.fullmatch(_L + r'mlp\.up_proj\.(weight|bias)', key):
            continue
        if re.fullmatch(_L + r'mlp\.gate_proj\.(weight|bias)', key):
            key, value = key.replace('gate_proj', 'weights_in'), torch.cat([value, vit[key.replace('gate', 'up')]])
        out[key] = value
    return out


def convert_hf_eomt(state_dict: StateDict, source: str = 'state dict') -> Conversion:
    """transformers' ``EomtForUniversalSegmentation`` or ``EomtDinov3ForUniversalSegmentation``
    -> vitadapter's EoMT keys (see the module doc)."""
    conv = Conversion(state_dict)
    conv.drop(LOSS_WEIGHTS, ['criterion.empty_weight'])
    vit, rest = _split(conv.state_dict, ('embeddings.', 'layers.', 'layernorm.'))
    if detect_eomt_layout(state_dict) == 'hf-eomt-dinov3':
        out = _timm_vit(rename(vit, HF_DINOV3_RULES), source, conv)
    else:
        vit = _pack_swiglu(vit)
        vit = fuse_qkv(vit, _L + r'attention\.([qkv])_proj\.(weight|bias)', 'blocks.{block}.attn.qkv.{kind}',
                       names=('q', 'k', 'v'))
        vit = rename(vit, HF_VIT_RULES)
        if 'pos_embed' in vit:
            vit['pos_embed'] = vit['pos_embed'][None]  # (N, D) embedding table -> timm's (1, N, D)
        out = OrderedDict((TRUNK + k, v) for k, v in vit.items())
    out.update(rename(rest, HF_HEAD_RULES))
    conv.state_dict = out
    return conv


def convert_tue_mps_eomt(state_dict: StateDict, source: str = 'state dict') -> Conversion:
    """A tue-mps/eomt LightningModule state dict -> vitadapter's EoMT keys (see the module doc)."""
    conv = Conversion(state_dict)
    conv.drop_matching(LOSS_WEIGHTS, r'criterion\.')
    norm = [conv.state_dict.get(f'network.encoder.pixel_{n}') for n in ('mean', 'std')]
    if all(t is not None for t in norm):
        values = [tuple(round(float(v), 4) for v in t.flatten()) for t in norm]
        # (a delta checkpoint stores the unchanged normalisation as zeros)
        if tuple(values) != IMAGENET and any(any(v) for v in values):
            conv.notes.append(f"tue-mps normalised this model's inputs with mean {values[0]}, std {values[1]} "
                              f"(of 0-1 pixels), not ImageNet's: normalise images that way before EoMT")
    conv.drop(NORMALISATION, ['network.encoder.pixel_mean', 'network.encoder.pixel_std'])
    vit, rest = _split(conv.state_dict, (BACKBONE,))
    vit = OrderedDict((k[len(BACKBONE):], v) for k, v in vit.items())
    if detect_eomt_layout(state_dict) == 'tue-mps-dinov3':
        out = _timm_vit(rename(vit, TUE_MPS_DINOV3_RULES), source, conv)
    else:  # timm's own ViT
        out = OrderedDict((TRUNK + k, v) for k, v in vit.items())
    out.update(rename(rest, TUE_MPS_HEAD_RULES))
    conv.state_dict = out
    return conv


def convert_eomt_checkpoint(checkpoint: Union[Checkpoint, Mapping[str, torch.Tensor]]) -> EomtCheckpoint:
    """A read checkpoint (or a state dict) of any layout -> :class:`EomtCheckpoint`."""
    ck = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint(OrderedDict(checkpoint), 'state dict')
    layout = detect_eomt_layout(ck.state_dict)
    if layout is None:
        raise unknown_eomt_layout(ck.source, ck.state_dict)
    if layout == 'vitadapter':
        conv = Conversion(ck.state_dict)
    elif layout.startswith('hf-'):
        conv = convert_hf_eomt(ck.state_dict, ck.source)
    else:
        conv = convert_tue_mps_eomt(ck.state_dict, ck.source)
    return EomtCheckpoint(conv.state_dict, ck.source, layout, ck.hf_config, conv.dropped, conv.notes)


def read_eomt_checkpoint(path, pickled_objects: str = 'refuse') -> EomtCheckpoint:
    """Read an EoMT checkpoint of any layout (see the module doc) into vitadapter's keys.

    Args:
        path: a transformers ``save_pretrained`` folder (config.json + weights) or weights file, a
            tue-mps ``.ckpt`` / ``pytorch_model.bin``, or a saved vitadapter EoMT state dict.
        pickled_objects: 'refuse' (default) or 'placeholder', for a Lightning checkpoint whose
            hyper-parameters pickle other objects (none of them is run: :mod:`vitadapter.weights.reading`).
    """
    return convert_eomt_checkpoint(read_checkpoint(path, pickled_objects))


# ----------------------------------------------------------------------------- fitting the model
def _num_blocks(state: StateDict) -> int:
    return len({m.group(1) for k in state if (m := re.match(re.escape(TRUNK) + r'blocks\.(\d+)\.', k))})


def _dinov3_name(state: StateDict) -> str:
    """The timm DINOv3 model a timm-layout (Eva) encoder needs, for error messages."""
    width = state[TRUNK + 'cls_token'].shape[-1] if TRUNK + 'cls_token' in state else None
    swiglu = any(k.endswith('.mlp.fc1_g.weight') for k in state)
    name = STANDARD_MODELS.get((width, _num_blocks(state), swiglu),
                               'vit_small_plus_patch16_dinov3' if swiglu else 'vit_small_patch16_dinov3')
    qkvb = any(_QV_BIAS.fullmatch(k) for k in state) and timm.is_model(name + '_qkvb')
    return name + '_qkvb' if qkvb else name


def _architecture_problems(state: StateDict, own: StateDict, model: EoMT, hf_config: Optional[dict]) -> List[str]:
    """What makes the checkpoint need another EoMT, each with the constructor argument to change."""
    trunk, problems = model.trunk, []
    shape = {k: tuple(v.shape) for k, v in state.items()}
    queries = shape.get('queries.weight', (model.num_queries, trunk.embed_dim))
    if queries[0] != model.num_queries:
        problems.append(f"the checkpoint has {queries[0]} queries, the model {model.num_queries}: build "
                        f"EoMT(num_queries={queries[0]})")
    classes = shape.get('head.class_head.weight', (model.num_classes + 1,))[0] - 1
    if classes != model.num_classes:
        problems.append(f"the checkpoint has {classes} classes (+ no object), the model {model.num_classes}: "
                        f"build EoMT(num_classes={classes})")
    blocks = shape.get('attn_mask_probs', (model.num_blocks,))[0]
    if blocks != model.num_blocks:
        problems.append(f"the checkpoint's queries join its last {blocks} blocks, the model's its last "
                        f"{model.num_blocks}: build EoMT(num_blocks={blocks})")
    dinov3 = TRUNK + 'pos_embed' not in state and TRUNK + 'cls_token' in state
    if dinov3 != (TRUNK + 'pos_embed' not in own):
        kind = 'a DINOv3 ViT (rotary positions)' if dinov3 else 'a ViT with a position table (DINOv2 style)'
        fix = f"'{_dinov3_name(state)}'" if dinov3 else "'vit_large_patch14_reg4_dinov2', patch_size=16"
        return problems + [f"the checkpoint's encoder is {kind}, the model's {trunk.model_name!r} is not: build "
                           f"EoMT({fix}, ...) (of the checkpoint's size)"]
    depth, width = _num_blocks(state), queries[1]
    if (depth, width) != (len(trunk.blocks), trunk.embed_dim):
        name = _dinov3_name(state) if dinov3 else DINOV2_NAMES.get(width, 'vit_large_patch14_reg4_dinov2')
        problems.append(f"the checkpoint's ViT has {depth} blocks of width {width}, the model's "
                        f"{len(trunk.blocks)} of width {trunk.embed_dim}: build EoMT on the timm model of that "
                        f"size ({name!r}), or pass depth={depth}, embed_dim={width}")
    heads = (hf_config or {}).get('num_attention_heads')
    own_heads = getattr(trunk.blocks[0].attn, 'num_heads', None) if len(trunk.blocks) else None
    if None not in (heads, own_heads) and heads != own_heads:
        problems.append(f"the checkpoint's config.json has {heads} attention heads, the model {own_heads}: "
                        f"pass num_heads={heads}")
    patch = shape.get(TRUNK + 'patch_embed.proj.weight', (None, None) + tuple(trunk.patch_size))[-2:]
    if patch != tuple(trunk.patch_size):
        problems.append(f"the checkpoint's patches are {patch[0]}x{patch[1]}, the model's "
                        f"{trunk.patch_size[0]}x{trunk.patch_size[1]}: pass "
                        f"patch_size={patch[0] if patch[0] == patch[1] else patch}")
    registers = shape.get(TRUNK + 'reg_token', (1, 0))[1]
    if registers != trunk.num_register_tokens:
        problems.append(f"the checkpoint has {registers} register tokens, the model {trunk.num_register_tokens}: "
                        f"pass {'num_reg_tokens' if dinov3 else 'reg_tokens'}={registers}")
    positions, own_positions = shape.get(TRUNK + 'pos_embed', (1, 0))[1], own.get(TRUNK + 'pos_embed')
    if own_positions is not None and positions and positions != own_positions.shape[1]:
        side = math.isqrt(positions)
        size = (hf_config or {}).get('image_size') or (side * patch[0] if side * side == positions else None)
        problems.append(f"the checkpoint's position table covers {positions} patches, the model's "
                        f"{own_positions.shape[1]}: " + (f"pass img_size={size} (any input size still runs: "
                                                         f"the trunk interpolates)" if size else
                                                         "pass the img_size it was trained at"))
    return problems


def _fit_qv_biases(state: StateDict, own: StateDict, dropped: Dict[str, List[str]], notes: List[str],
                   model: EoMT) -> List[str]:
    """DINOv3 q/v biases (timm ``attn.q_bias`` / ``v_bias``) between a checkpoint and a model with or
    without them: missing ones are zero, all-zero ones the model lacks are dropped; returns the
    problems (non-zero biases the model has no place for)."""
    theirs = [k for k in state if _QV_BIAS.fullmatch(k)]
    ours = [k for k in own if _QV_BIAS.fullmatch(k)]
    if theirs and not ours:
        if any(bool(state[k].abs().max() > 0) for k in theirs):
            return [f"the checkpoint's q/v biases are non-zero but {model.trunk.model_name!r} has none: "
                    f"build EoMT('{_dinov3_name(state)}', ...)"]
        for k in theirs:
            del state[k]
        dropped.setdefault(ZERO_QV_BIAS, []).extend(theirs)
    elif ours and not theirs and any(k.startswith(TRUNK + 'blocks.') for k in state):
        for k in ours:
            state[k] = torch.zeros_like(own[k])
        notes.append(f"the checkpoint has no q/v biases (all zero); {model.trunk.model_name!r}'s are set to zero")
    return []


def _add_delta_base(state: StateDict, delta_base, source: str, dropped: Dict[str, List[str]],
                    notes: List[str]) -> StateDict:
    """Encoder (``trunk.model.*``) = delta + the pretrained backbone, as tue-mps's loader adds them;
    the rest as stored (tue-mps zeroes its parameters outside the encoder before adding)."""
    base = convert_checkpoint(delta_base)
    base_sd = OrderedDict((TRUNK + k, v) for k, v in base.state_dict.items())
    out, lacking, wrong = OrderedDict(state), [], []
    for key in [k for k in state if k.startswith(TRUNK)]:
        b = base_sd.pop(key, None)
        if b is None:
            if not _QV_BIAS.fullmatch(key):  # (all-zero q/v biases: dropped by the base's conversion)
                lacking.append(key)
        elif b.shape != state[key].shape:
            wrong.append(f"{key[len(TRUNK):]}: delta {tuple(state[key].shape)} vs base {tuple(b.shape)}")
        else:
            out[key] = state[key] + b.to(state[key].dtype)
    for key in [k for k in base_sd if _QV_BIAS.fullmatch(k)]:  # the delta's q/v biases were all zero
        out[key] = base_sd.pop(key)
    if lacking or wrong:
        raise CheckpointError(
            f"the delta base {base.source} ({base.format.title}) is not the backbone {source} was trained from: "
            + (f"it lacks {key_patterns([k[len(TRUNK):] for k in lacking], 6)}" if lacking else '')
            + ('; ' if lacking and wrong else '') + ('; '.join(wrong[:3]) if wrong else '')
            + ". Pass the pretrained DINOv3 weights the tue-mps config names (its backbone_name)")
    if base_sd:
        dropped[BASE_EXTRA] = [k[len(TRUNK):] for k in base_sd]
    notes.append(f"encoder = the checkpoint's delta + {base.source} ({base.format.title} layout)")
    probs = out.get('attn_mask_probs')
    if probs is not None and bool((probs < 0).any()):
        out['attn_mask_probs'] = probs + 1
        notes.append(f"attn_mask_probs stored as a delta against the 1 tue-mps's model starts from: "
                     f"loaded as 1 + stored = {[round(float(p), 4) for p in out['attn_mask_probs']]}")
    return out


def load_eomt_checkpoint(model: EoMT, checkpoint, strict: bool = True, delta_base=None) -> LoadReport:
    """Load an EoMT checkpoint of any layout (see the module doc) into ``model``.

    Args:
        model: the :class:`EoMT` (:func:`eomt_kwargs_from_hf_config` gives the one an HF config needs).
        checkpoint: a path (:func:`read_eomt_checkpoint`), an :class:`EomtCheckpoint`, or a state dict.
        strict: a checkpoint for another EoMT (queries, classes, blocks, depth, width, patch, registers,
            position grid), one that leaves tensors of the model as initialised, or one with tensors
            the model has no place for, is a :class:`CheckpointError` naming them and the fix (its
            ``report`` attribute holds the :class:`LoadReport`). False loads what fits (tensors of
            another shape are dropped) and the report lists the rest.
        delta_base: for a tue-mps checkpoint trained with ``delta_weights: True`` (their DINOv3 configs):
            the pretrained backbone it is a delta of (a Hugging Face DINOv3ViTModel folder or file, an
            official or timm DINOv3 file), added to the encoder. A tue-mps DINOv3 checkpoint needs it,
            or ``delta_base=False`` for one trained with ``delta_weights: False``.

    Returns:
        the :class:`LoadReport` (format: the layout; dropped: loss weights, input normalisation...).
    """
    if isinstance(checkpoint, EomtCheckpoint):
        ck = checkpoint
    elif isinstance(checkpoint, Mapping):
        ck = convert_eomt_checkpoint(checkpoint)
    else:
        ck = read_eomt_checkpoint(checkpoint)
    state, dropped, notes = OrderedDict(ck.state_dict), dict(ck.dropped), list(ck.notes)
    if delta_base is not None and delta_base is not False:
        if not ck.layout.startswith('tue-mps'):
            raise CheckpointError(f"delta_base is for tue-mps checkpoints trained with delta_weights: True; "
                                  f"{ck.source} is a {ck.title} checkpoint (absolute weights): load it "
                                  f"without delta_base")
        state = _add_delta_base(state, delta_base, ck.source, dropped, notes)
    elif ck.layout == 'tue-mps-dinov3' and delta_base is None:
        raise CheckpointError(
            f"{ck.source} is a tue-mps DINOv3 checkpoint: tue-mps's DINOv3 configs (delta_weights: True) "
            f"store the encoder as trained minus pretrained weights. Pass delta_base= the pretrained "
            f"DINOv3 backbone (a Hugging Face DINOv3ViTModel folder, an official or timm file); for one "
            f"trained with delta_weights: False, pass delta_base=False")
    own = model.state_dict()
    problems = _architecture_problems(state, own, model, ck.hf_config)
    problems += _fit_qv_biases(state, own, dropped, notes, model)
    probs = state.get('attn_mask_probs')
    if probs is not None and not bool(((probs >= 0) & (probs <= 1)).all()):
        problems.append(f"attn_mask_probs = {[round(float(p), 4) for p in probs]} are not probabilities")
    if problems and strict:
        raise CheckpointError(f"{ck.source} ({ck.title} layout) does not fit the model: " + '; '.join(problems)
                              + ". (strict=False loads what fits)")
    notes += problems
    wrong = [k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong and strict:
        raise CheckpointError(f"{ck.source} ({ck.title} layout) does not fit the model: {len(wrong)} tensors of "
                              f"another shape, e.g. " + '; '.join(f"{k}: checkpoint {tuple(state[k].shape)} vs "
                                                                   f"model {tuple(own[k].shape)}" for k in wrong[:3])
                              + " (another mlp_ratio?). (strict=False loads the others)")
    if wrong:
        dropped["another shape than the model's (strict=False)"] = wrong
        state = OrderedDict((k, v) for k, v in state.items() if k not in wrong)
    report = LoadReport(source=ck.source, format=ck.title)
    report.missing = [k for k in own if k not in state]
    report.unexpected = [k for k in state if k not in own]
    report.dropped, report.notes = dropped, notes + config_notes(ck.hf_config, model)
    if strict and (report.missing or report.unexpected):
        parts = [f"leaves {len(report.missing)} of the model's tensors as initialised: "
                 f"{key_patterns(report.missing, 8)}"] if report.missing else []
        parts += [f"has {len(report.unexpected)} tensors the model has no place for: "
                  f"{key_patterns(report.unexpected, 8)}"] if report.unexpected else []
        error = CheckpointError(
            f"{ck.source} ({ck.title} layout) " + '; it '.join(parts) + f". The model is EoMT on "
            f"{model.trunk.model_name!r}. Choose the checkpoint and model that match (eomt_from_hf builds "
            f"the one of a Hugging Face folder), or load partially on purpose with strict=False: the load "
            f"report then lists what stays initialised")
        error.report = report
        raise error
    usable = OrderedDict((k, v) for k, v in state.items() if k in own)
    model.load_state_dict(usable, strict=False)
    report.loaded = len(usable)
    return report


# ----------------------------------------------------------------------------- from a config
def _hf_refusals(cfg: Mapping, patch: int) -> List[str]:
    """What of a transformers EoMT config timm or EoMT's head cannot represent."""
    problems = []
    act = cfg.get('hidden_act', 'gelu')
    if act != 'gelu':
        problems.append(f"hidden_act={act!r}: transformers uses it in the mask head and the upscaling blocks, "
                        f"which are tue-mps's with GELU in vitadapter's EoMT")
    blocks = cfg.get('num_upscale_blocks', 2)
    if blocks != num_scale_blocks((patch, patch)):
        problems.append(f"num_upscale_blocks={blocks}: EoMT derives {num_scale_blocks((patch, patch))} from "
                        f"patch {patch} (stride 4), as tue-mps does")
    if cfg.get('model_type') == 'eomt_dinov3':
        if cfg.get('use_gated_mlp'):
            problems.append("use_gated_mlp=True: timm's DINOv3 SwiGLU gates with SiLU, and the head would need "
                            f"the same hidden_act ({act!r}) as the FFN")
        if cfg.get('key_bias', False) or not cfg.get('proj_bias', True) or not cfg.get('mlp_bias', True):
            problems.append("key_bias=True, proj_bias=False or mlp_bias=False: timm's DINOv3 blocks have no k "
                            "bias and always have projection and MLP biases")
        if cfg.get('query_bias', True) != cfg.get('value_bias', True):
            problems.append("query_bias != value_bias: timm's DINOv3 blocks have both q and v biases or neither")
    return problems


def eomt_kwargs_from_hf_config(cfg: Mapping) -> dict:
    """The :class:`EoMT` arguments (``model_name`` and the timm kwargs included) of a transformers
    ``EomtConfig`` / ``EomtDinov3Config`` (a ``config.json`` as a dict); CheckpointError for what
    cannot be represented (another activation in the head, other upscale blocks than the patch size
    gives, a gated DINOv3 MLP, k biases)."""
    kind = cfg.get('model_type')
    if kind not in ('eomt', 'eomt_dinov3'):
        raise CheckpointError(f"config model_type={kind!r}: expected 'eomt' or 'eomt_dinov3' (transformers' "
                              f"EomtForUniversalSegmentation / EomtDinov3ForUniversalSegmentation)")
    patch = cfg.get('patch_size', 16)
    patch = patch[0] if isinstance(patch, (list, tuple)) else patch
    problems = _hf_refusals(cfg, patch)
    if problems:
        raise CheckpointError(f"this {kind} config has no vitadapter EoMT equivalent: " + '; '.join(problems))
    width, depth = cfg.get('hidden_size', 1024), cfg.get('num_hidden_layers', 24)
    size = cfg.get('image_size', 640)
    labels = cfg.get('id2label')
    kwargs = dict(num_classes=len(labels) if labels else cfg['num_labels'], num_queries=cfg.get('num_queries', 200),
                  num_blocks=cfg.get('num_blocks', 4), img_size=tuple(size) if isinstance(size, list) else size,
                  patch_size=patch, embed_dim=width, depth=depth, num_heads=cfg.get('num_attention_heads', 16),
                  in_chans=cfg.get('num_channels', 3), init_values=cfg.get('layerscale_value', 1.0),
                  drop_path_rate=cfg.get('drop_path_rate', 0.0))
    eps = cfg.get('layer_norm_eps', 1e-6)
    if kind == 'eomt':
        hidden = int(width * cfg.get('mlp_ratio', 4))
        if cfg.get('use_swiglu_ffn'):  # transformers' SwiGLU width, packed (fc1 = 2 x hidden) as timm's giant
            hidden = 2 * ((int(hidden * 2 / 3) + 7) // 8 * 8)
        name = 'vit_giant_patch14_reg4_dinov2' if cfg.get('use_swiglu_ffn') else \
            DINOV2_NAMES.get(width, 'vit_large_patch14_reg4_dinov2')
        kwargs.update(reg_tokens=cfg.get('num_register_tokens', 4), qkv_bias=True,
                      attn_drop_rate=cfg.get('attention_dropout', 0.0),
                      pos_drop_rate=cfg.get('hidden_dropout_prob', 0.0))
        if not math.isclose(eps, 1e-6):
            kwargs['norm_layer'] = functools.partial(nn.LayerNorm, eps=eps)
    else:
        hidden = cfg.get('intermediate_size', 4096)
        name = STANDARD_MODELS.get((width, depth, False), 'vit_small_patch16_dinov3')
        if cfg.get('query_bias', True):
            name = name + '_qkvb' if timm.is_model(name + '_qkvb') else name
            kwargs['qkv_bias'] = True
        rope = cfg.get('rope_parameters') or {}
        kwargs.update(num_reg_tokens=cfg.get('num_register_tokens', 4),
                      rope_temperature=rope.get('rope_theta', cfg.get('rope_theta', 100.0)),
                      norm_layer=functools.partial(timm.layers.LayerNorm, eps=eps))
        # train-time RoPE coordinate augmentation, where timm's Eva has it (same draws as DINOv3's)
        eva = inspect.signature(timm.models.eva.Eva.__init__).parameters
        for ours, theirs in (('rope_shift_coords', 'pos_embed_shift'), ('rope_jitter_coords', 'pos_embed_jitter'),
                             ('rope_rescale_coords', 'pos_embed_rescale')):
            if cfg.get(theirs) is not None and ours in eva:
                kwargs[ours] = cfg[theirs]
    kwargs['mlp_ratio'] = (hidden + 0.5) / width  # timm: int(width * mlp_ratio) == hidden
    return dict(model_name=name, **kwargs)


def eomt_from_hf(folder, strict: bool = True, **overrides) -> EoMT:
    """The :class:`EoMT` of a transformers ``save_pretrained`` folder, built from its config.json and
    loaded (:func:`load_eomt_checkpoint`; the report is ``model.load_report``).

    Args:
        folder: the folder (config.json + model.safetensors), or its weights file beside config.json.
        strict: as :func:`load_eomt_checkpoint`'s.
        **overrides: replace :func:`eomt_kwargs_from_hf_config`'s arguments (``img_size``,
            ``drop_path_rate``, ``masked_attention``, ``model_name``...).
    """
    ck = read_eomt_checkpoint(folder)
    if ck.hf_config is None or not ck.layout.startswith('hf-'):
        what = 'without config.json' if ck.layout.startswith('hf-') else f'a {ck.title} checkpoint'
        raise CheckpointError(f"{os.fspath(folder)} is {what}: eomt_from_hf needs a transformers "
                              f"save_pretrained folder; build the EoMT and use load_eomt_checkpoint for others")
    kwargs = dict(eomt_kwargs_from_hf_config(ck.hf_config), **overrides)
    model = EoMT(**kwargs)
    model.load_report = load_eomt_checkpoint(model, ck, strict=strict)
    return model
