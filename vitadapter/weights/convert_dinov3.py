"""DINOv3 weights: the official layout (facebookresearch/dinov3) and Hugging Face ``DINOv3ViTModel``.

* Official ``dinov3_vit*16_pretrain_*.pth``: kept in its layout for timm's own ``eva.checkpoint_filter_fn``
  (``storage_tokens`` -> ``reg_token``, ``ls1/ls2.gamma`` -> ``gamma_1/2``, SwiGLU ``w1/w2/w3`` ->
  ``fc1_g/fc1_x/fc2``, ``qkv.bias`` -> ``q_bias``/``v_bias``), so the DINOv3 semantics live in one
  place: timm. Before that, what timm would drop silently is dropped here and reported: the
  ``mask_token`` (masked-image modelling), ``rope_embed.periods`` (timm recomputes them from the base,
  100), the k-bias mask (``attn.qkv.bias_mask``, folded into ``attn.qkv.bias`` first: the official
  model multiplies the bias by it, which zeroes the k bias) and ``local_cls_norm`` (7B and SAT-493M
  pretraining on local crops; never used at inference).
* Hugging Face ``DINOv3ViTModel`` (transformers >= 4.56) -> the official layout: separate
  ``q/k/v_proj`` fused into ``qkv`` (HF has no k bias: a zero one is put in its place),
  ``o_proj`` -> ``proj``, ``layer_scale*.lambda1`` -> ``ls*.gamma``, ``mlp.up/down_proj`` ->
  ``fc1/fc2`` or, gated, ``gate/up/down_proj`` -> ``w1/w2/w3``.

Which timm model the weights need is read from them (:func:`fit_dinov3_model`): non-zero q/v biases
need a model with q/v biases (``vit_*_patch16_dinov3_qkvb``, or ``qkv_bias=True``), SwiGLU weights a
SwiGLU model (S+, H+, 7B). Biases that are all zero (the released distilled models) load into either.
"""
import re
from typing import List, Optional

import torch
import torch.nn as nn

from .reading import CheckpointError
from .renaming import MASK_TOKEN, Conversion, StateDict, fuse_qkv, rename

ROPE_PERIODS = 'RoPE periods (a buffer: timm recomputes them from the base, 100)'
K_BIAS_MASK = 'k-bias mask (folded into attn.qkv.bias first: the official model zeroes the k bias with it)'
LOCAL_CLS_NORM = 'local-crop class-token norm (pretraining on local crops only, never used at inference)'
CLS_NORM = 'untied class/register-token final norm (timm applies norm to every token)'
ZERO_QV_BIAS = 'q/v biases, all zero (the model has none: nothing is lost)'
LOST_QV_BIAS = 'q/v biases the model has no place for (NON-ZERO: its features differ from the original)'

ROPE_BASE = 100.0  # every released DINOv3 ViT; timm's vit_*_dinov3 use rope_temperature=100
_QKV_BIAS = re.compile(r'blocks\.(\d+)\.attn\.qkv\.bias')
_SWIGLU = re.compile(r'blocks\.\d+\.mlp\.w1\.weight')

# (width, depth, SwiGLU) -> timm name, for the released sizes
STANDARD_MODELS = {
    (384, 12, False): 'vit_small_patch16_dinov3',
    (384, 12, True): 'vit_small_plus_patch16_dinov3',
    (768, 12, False): 'vit_base_patch16_dinov3',
    (1024, 24, False): 'vit_large_patch16_dinov3',
    (1280, 32, True): 'vit_huge_plus_patch16_dinov3',
    (4096, 40, True): 'vit_7b_patch16_dinov3',
}


# ----------------------------------------------------------------------------- official layout
def _fold_k_bias_mask(conv: Conversion) -> None:
    """``attn.qkv.bias`` <- bias * bias_mask (what the official ``LinearKMaskedBias`` computes with),
    then the masks are dropped."""
    masks = [k for k in conv.state_dict if k.endswith('.attn.qkv.bias_mask')]
    for key in masks:
        bias_key = key[:-len('_mask')]
        if bias_key in conv.state_dict:
            bias = conv.state_dict[bias_key]
            conv.state_dict[bias_key] = bias * conv.state_dict[key].to(bias.dtype)
    conv.drop(K_BIAS_MASK, masks)


def _check_no_k_bias(state_dict: StateDict) -> None:
    """timm's DINOv3 models (and Hugging Face's) have no k bias: a non-zero one cannot be loaded."""
    for key, bias in state_dict.items():
        if _QKV_BIAS.fullmatch(key) and bias.chunk(3)[1].abs().max() > 0:
            raise CheckpointError(
                f"{key} has a non-zero k part: timm's DINOv3 models fix the k bias at 0 (the official "
                f"models mask it with attn.qkv.bias_mask, which this checkpoint lacks or sets to 1), so "
                f"these weights have no timm equivalent")


def _periods_note(periods: torch.Tensor) -> List[str]:
    """What the stored RoPE periods say about the features timm will compute (it recomputes them)."""
    n = periods.numel()
    exact = ROPE_BASE ** (2 * torch.arange(n, dtype=torch.float64) / (2 * n))
    rel = float(((periods.double() - exact).abs() / exact).max()) if n else 0.0
    if rel <= 2.0 ** -20:
        return []
    if rel <= 2.0 ** -8:
        return [f"rope_embed.periods are stored rounded (relative error {rel:.1e}, bfloat16 precision); "
                f"the official model computes with these rounded values, timm with exact ones (features "
                f"differ slightly)"]
    return [f"rope_embed.periods are not those of RoPE base {ROPE_BASE:g} (relative difference {rel:.1e}): "
            f"timm's vit_*_dinov3 models use base {ROPE_BASE:g}, so features will differ from the original"]


def convert_dinov3(state_dict: StateDict) -> Conversion:
    """Official DINOv3 -> the same layout, less what timm would drop silently (see module doc).

    ``storage_tokens`` stays: timm's filter recognises the layout by it.
    """
    conv = Conversion(state_dict)
    _fold_k_bias_mask(conv)
    _check_no_k_bias(conv.state_dict)
    conv.drop(MASK_TOKEN, ['mask_token'])
    periods = conv.state_dict.get('rope_embed.periods')
    if periods is not None:
        conv.notes += _periods_note(periods)
    conv.drop(ROPE_PERIODS, ['rope_embed.periods'])
    conv.drop_matching(LOCAL_CLS_NORM, r'local_cls_norm\.')
    if any(k.startswith('cls_norm.') for k in conv.state_dict):
        conv.notes.append("the checkpoint has an untied final norm for the class and register tokens "
                          "(cls_norm); timm's model applies norm to them too, so normed class and "
                          "register tokens differ from the original (patch tokens do not)")
    conv.drop_matching(CLS_NORM, r'cls_norm\.')
    return conv


# ----------------------------------------------------------------------------- Hugging Face
# transformers 5 saves DINOv3ViTModel's blocks as model.layer.N, 4.x as layer.N.
_LAYER = r'(?:model\.)?layer\.(\d+)\.'
HF_DINOV3_RULES = (
    (r'embeddings\.cls_token', 'cls_token'),
    (r'embeddings\.register_tokens', 'storage_tokens'),
    (r'embeddings\.patch_embeddings\.(weight|bias)', r'patch_embed.proj.\1'),
    (_LAYER + r'norm([12])\.(weight|bias)', r'blocks.\1.norm\2.\3'),
    (_LAYER + r'attention\.o_proj\.(weight|bias)', r'blocks.\1.attn.proj.\2'),
    (_LAYER + r'layer_scale([12])\.lambda1', r'blocks.\1.ls\2.gamma'),
    (r'norm\.(weight|bias)', r'norm.\1'),
)
HF_MLP_RULES = ((_LAYER + r'mlp\.up_proj\.(weight|bias)', r'blocks.\1.mlp.fc1.\2'),
                (_LAYER + r'mlp\.down_proj\.(weight|bias)', r'blocks.\1.mlp.fc2.\2'))
HF_GATED_RULES = ((_LAYER + r'mlp\.gate_proj\.(weight|bias)', r'blocks.\1.mlp.w1.\2'),
                  (_LAYER + r'mlp\.up_proj\.(weight|bias)', r'blocks.\1.mlp.w2.\2'),
                  (_LAYER + r'mlp\.down_proj\.(weight|bias)', r'blocks.\1.mlp.w3.\2'))


def convert_hf_dinov3(state_dict: StateDict) -> Conversion:
    """HF ``DINOv3ViTModel`` -> official DINOv3 layout (see module doc); ``mask_token`` dropped."""
    conv = Conversion(state_dict)
    conv.drop(MASK_TOKEN, ['embeddings.mask_token'])
    gated = any(re.match(_LAYER + r'mlp\.gate_proj\.', k) for k in conv.state_dict)
    sd = fuse_qkv(conv.state_dict, _LAYER + r'attention\.([qkv])_proj\.(weight|bias)',
                  'blocks.{block}.attn.qkv.{kind}', names=('q', 'k', 'v'), zero_missing_bias=True)
    conv.state_dict = rename(sd, HF_DINOV3_RULES + (HF_GATED_RULES if gated else HF_MLP_RULES))
    _check_no_k_bias(conv.state_dict)
    return conv


# ----------------------------------------------------------------------------- variant
def has_swiglu(state_dict: StateDict) -> bool:
    """Whether an official-layout state dict has SwiGLU FFNs (``mlp.w1/w2/w3``: S+, H+, 7B)."""
    return any(_SWIGLU.fullmatch(k) for k in state_dict)


def qv_bias_keys(state_dict: StateDict) -> List[str]:
    """The ``attn.qkv.bias`` keys of an official-layout state dict."""
    return [k for k in state_dict if _QKV_BIAS.fullmatch(k)]


def has_nonzero_qv_bias(state_dict: StateDict) -> bool:
    """Whether any q or v bias is non-zero (the k part is checked apart: it must be zero)."""
    return any(bool(state_dict[k].abs().max() > 0) for k in qv_bias_keys(state_dict))


def _num_blocks(state_dict: StateDict) -> int:
    return len({m.group(1) for k in state_dict if (m := re.match(r'blocks\.(\d+)\.', k))})


def timm_dinov3_name(state_dict: StateDict, model_name: Optional[str] = None,
                     swiglu: Optional[bool] = None, qkvb: Optional[bool] = None) -> str:
    """The timm model an official-layout state dict needs, in words: "timm's
    vit_base_patch16_dinov3_qkvb" for a released geometry; for another one, ``model_name``'s
    family (if its FFN kind is right) or the families of that kind, with the ``_qkvb`` choice."""
    swiglu = has_swiglu(state_dict) if swiglu is None else swiglu
    qkvb = has_nonzero_qv_bias(state_dict) if qkvb is None else qkvb
    width = state_dict['cls_token'].shape[-1] if 'cls_token' in state_dict else None
    base = STANDARD_MODELS.get((width, _num_blocks(state_dict), swiglu))
    if base is None and model_name:
        own = re.sub(r'_qkvb$', '', model_name)
        if any(n == own and s == swiglu for (_, _, s), n in STANDARD_MODELS.items()):
            base = own
    if base is None:
        names = ', '.join(n for (_, _, s), n in STANDARD_MODELS.items() if s == swiglu)
        return (f"one of timm's {'SwiGLU' if swiglu else 'MLP'} DINOv3 models ({names}) built with "
                f"embed_dim={width}, depth={_num_blocks(state_dict)}"
                + (", with q/v biases (its _qkvb variant, or qkv_bias=True)" if qkvb else ''))
    import timm
    if qkvb and timm.is_model(base + '_qkvb'):
        return f"timm's {base}_qkvb"
    return f"timm's {base}" + (' with qkv_bias=True' if qkvb else '')


def _model_name(model: nn.Module) -> Optional[str]:
    return (getattr(model, 'pretrained_cfg', None) or {}).get('architecture')


def fit_dinov3_model(conv: Conversion, model: nn.Module) -> List[str]:
    """Check an official-layout conversion against the timm model it is loaded into.

    Returns the problems, each naming the model to use (the loader raises them as a
    :class:`CheckpointError` when strict; otherwise they become notes). q/v biases the model has no
    place for are removed and recorded as dropped here (timm's filter would drop them silently):
    harmlessly when all zero, as a problem when not. A checkpoint without q/v biases gets zero
    ones for a model that has them.
    """
    sd = conv.state_dict
    name = _model_name(model) or type(model).__name__
    problems = []
    if getattr(model, 'rope', None) is None or getattr(model, 'reg_token', None) is None:
        problems.append(f"DINOv3 weights need a timm DINOv3 model (RoPE, register tokens): "
                        f"{name} is not one: use {timm_dinov3_name(sd)}")
        return problems
    model_swiglu = hasattr(model.blocks[0].mlp, 'fc1_g') if len(model.blocks) else None
    swiglu = has_swiglu(sd)
    if model_swiglu is not None and model_swiglu != swiglu:
        problems.append(
            f"the checkpoint has {'SwiGLU FFNs (mlp.w1/w2/w3)' if swiglu else 'MLP FFNs (mlp.fc1/fc2)'} "
            f"but {name} has {'SwiGLU' if model_swiglu else 'MLP'} FFNs: use "
            f"{timm_dinov3_name(sd, name)}")
    model_bias = any(n.endswith('attn.q_bias') for n, _ in model.named_parameters())
    bias_keys = qv_bias_keys(sd)
    nonzero = has_nonzero_qv_bias(sd)
    if bias_keys and not model_bias:
        if nonzero:
            problems.append(f"the checkpoint's q/v biases are non-zero but {name} has none (they would be "
                            f"dropped): use {timm_dinov3_name(sd, name, swiglu, qkvb=True)}")
        conv.drop(LOST_QV_BIAS if nonzero else ZERO_QV_BIAS, bias_keys)
    elif not bias_keys and model_bias:  # no bias is a zero bias: the same features
        for key in [k for k in sd if re.fullmatch(r'blocks\.\d+\.attn\.qkv\.weight', k)]:
            sd[key[:-len('weight')] + 'bias'] = sd[key].new_zeros(sd[key].shape[0])
        conv.notes.append(f"the checkpoint has no q/v biases; {name}'s are set to zero (the same "
                          f"features; {timm_dinov3_name(sd, name, swiglu, qkvb=False)} has none)")
    return problems


def dinov3_shell(state_dict: StateDict) -> nn.Module:
    """A weightless (meta device) timm Eva with the geometry of an official-layout DINOv3 state dict
    (width, blocks, patch, registers, FFN kind, q/v biases iff non-zero), so timm's
    ``checkpoint_filter_fn`` can convert it without the real model."""
    from timm.models.eva import Eva
    width = state_dict['cls_token'].shape[-1]
    patch = state_dict['patch_embed.proj.weight'].shape[-1]
    registers = state_dict['storage_tokens'].shape[1] if 'storage_tokens' in state_dict else 0
    with torch.device('meta'):  # the filter reads names and the patch size, not the FFN's shapes
        return Eva(img_size=patch, patch_size=patch, embed_dim=width, depth=_num_blocks(state_dict),
                   num_heads=1, swiglu_mlp=has_swiglu(state_dict), swiglu_align_to=8,
                   qkv_bias=has_nonzero_qv_bias(state_dict), num_reg_tokens=registers,
                   use_abs_pos_emb=False, use_rot_pos_emb=True, rope_type='dinov3',
                   rope_temperature=ROPE_BASE, num_classes=0, init_values=1.0)

