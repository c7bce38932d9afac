"""Hugging Face transformers ``ViTModel``, ``Dinov2Model`` and ``Dinov2WithRegistersModel`` weights.

HF stores separate q/k/v projections and its own names (``embeddings.*``, ``encoder.layer.N.*``).

* ``ViTModel`` -> timm layout directly (``vit_*`` models: class token, position embeddings
  covering it, pre-norm blocks).
* ``Dinov2Model`` / ``Dinov2WithRegistersModel`` -> the official DINOv2 layout
  (``register_tokens``, ``blocks.N.ls1.gamma``, ``mask_token``...). timm's own
  ``checkpoint_filter_fn`` then converts that layout to its ``vit_*_dinov2`` models (folding the
  class token's position embedding into the class token for register models), so the DINOv2
  semantics live in one place: timm.

HF's ``pooler`` (dense + tanh on the class token, part of ``ViTModel``) was never pretrained in
these checkpoints and is no part of the trunk: it is dropped and reported. The class token's
hidden state is the feature. ``mask_token`` is only used for masked-image modelling.
A ``vit.`` / ``dinov2.`` prefix (``*ForImageClassification``) is removed before conversion, and
a transformers-5 state dict (its in-memory names: ``layers.N.attention.q_proj``...) is read as
the 4.x names that save_pretrained writes.
"""
import re

import torch

from .renaming import MASK_TOKEN, Conversion, StateDict, fuse_qkv, rename

POOLER = "HF pooler (dense + tanh, never pretrained; the class token's hidden state is the feature)"

_LAYER = r'encoder\.layer\.(\d+)\.'
_QKV = _LAYER + r'attention\.attention\.(query|key|value)\.(weight|bias)'

HF_VIT_RULES = (
    (r'embeddings\.cls_token', 'cls_token'),
    (r'embeddings\.position_embeddings', 'pos_embed'),
    (r'embeddings\.patch_embeddings\.projection\.(weight|bias)', r'patch_embed.proj.\1'),
    (_LAYER + r'layernorm_before\.(weight|bias)', r'blocks.\1.norm1.\2'),
    (_LAYER + r'layernorm_after\.(weight|bias)', r'blocks.\1.norm2.\2'),
    (_LAYER + r'attention\.output\.dense\.(weight|bias)', r'blocks.\1.attn.proj.\2'),
    (_LAYER + r'intermediate\.dense\.(weight|bias)', r'blocks.\1.mlp.fc1.\2'),
    (_LAYER + r'output\.dense\.(weight|bias)', r'blocks.\1.mlp.fc2.\2'),
    (r'layernorm\.(weight|bias)', r'norm.\1'),
    (r'classifier\.(weight|bias)', r'head.\1'),
)

# HF Dinov2 -> official DINOv2 (facebookresearch) names.
HF_DINOV2_RULES = (
    (r'embeddings\.cls_token', 'cls_token'),
    (r'embeddings\.mask_token', 'mask_token'),
    (r'embeddings\.register_tokens', 'register_tokens'),
    (r'embeddings\.position_embeddings', 'pos_embed'),
    (r'embeddings\.patch_embeddings\.projection\.(weight|bias)', r'patch_embed.proj.\1'),
    (_LAYER + r'norm([12])\.(weight|bias)', r'blocks.\1.norm\2.\3'),
    (_LAYER + r'attention\.output\.dense\.(weight|bias)', r'blocks.\1.attn.proj.\2'),
    (_LAYER + r'layer_scale([12])\.lambda1', r'blocks.\1.ls\2.gamma'),
    (_LAYER + r'mlp\.(fc[12])\.(weight|bias)', r'blocks.\1.mlp.\2.\3'),
    (_LAYER + r'mlp\.weights_in\.(weight|bias)', r'blocks.\1.mlp.w12.\2'),  # SwiGLU (giant)
    (_LAYER + r'mlp\.weights_out\.(weight|bias)', r'blocks.\1.mlp.w3.\2'),
    (r'layernorm\.(weight|bias)', r'norm.\1'),
    (r'classifier\.(weight|bias)', r'head.\1'),
)


# transformers 5 names modules differently in memory (state_dict(), and so torch.save) from what
# save_pretrained writes (the 4.x names, which the published checkpoints have): renamed back here.
_V5_QKV = {'q': 'query', 'k': 'key', 'v': 'value'}
_V5_RULES = (
    (r'(?:encoder\.layer|layers)\.(\d+)\.attention\.([qkv])_proj\.',
     lambda m: f"encoder.layer.{m[1]}.attention.attention.{_V5_QKV[m[2]]}."),
    (r'(?:encoder\.layer|layers)\.(\d+)\.attention\.o_proj\.', r'encoder.layer.\1.attention.output.dense.'),
    (r'layers\.(\d+)\.(layernorm_before|layernorm_after)\.', r'encoder.layer.\1.\2.'),
    (r'layers\.(\d+)\.mlp\.fc1\.', r'encoder.layer.\1.intermediate.dense.'),  # ViTModel's MLP
    (r'layers\.(\d+)\.mlp\.fc2\.', r'encoder.layer.\1.output.dense.'),
    (r'encoder\.layer\.(\d+)\.mlp\.down_proj\.', r'encoder.layer.\1.mlp.weights_out.'),  # Dinov2 SwiGLU
)
_V5_KEY = re.compile(r'(?:encoder\.layer|layers)\.\d+\.(attention\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.'
                     r'|layers\.\d+\.layernorm_before\.')


def legacy_hf_names(state_dict: StateDict) -> StateDict:
    """A transformers-5 in-memory ViTModel / Dinov2 state dict in the names save_pretrained
    writes (4.x); SwiGLU's separate gate and up projections packed into ``weights_in`` as
    Dinov2SwiGLUFFN reads it (the first half gated). Other state dicts come back unchanged."""
    if not any(_V5_KEY.match(k) for k in state_dict):
        return state_dict
    out = {}
    for key, value in state_dict.items():
        match = re.match(r'encoder\.layer\.(\d+)\.mlp\.(gate|up)_proj\.(weight|bias)$', key)
        if match:
            if match[2] == 'gate':
                up = state_dict[f'encoder.layer.{match[1]}.mlp.up_proj.{match[3]}']
                out[f'encoder.layer.{match[1]}.mlp.weights_in.{match[3]}'] = torch.cat([value, up])
            continue
        for pattern, replacement in _V5_RULES:
            renamed, n = re.subn('^' + pattern, replacement, key)
            if n:
                key = renamed
                break
        out[key] = value
    return out


def strip_task_prefix(state_dict: StateDict, prefixes=('vit.', 'dinov2.')) -> StateDict:
    """``vit.embeddings...`` (ViTForImageClassification) -> ``embeddings...``."""
    for prefix in prefixes:
        if any(k.startswith(prefix + 'embeddings.') for k in state_dict):
            return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}
    return state_dict


def convert_hf_vit(state_dict: StateDict) -> Conversion:
    """HF ``ViTModel`` -> timm ``vit_*`` layout; pooler and mask token dropped."""
    conv = Conversion(legacy_hf_names(strip_task_prefix(state_dict)))
    conv.drop_matching(POOLER, r'pooler\.')
    conv.drop(MASK_TOKEN, ['embeddings.mask_token'])
    sd = fuse_qkv(conv.state_dict, _QKV, 'blocks.{block}.attn.qkv.{kind}')
    conv.state_dict = rename(sd, HF_VIT_RULES)
    return conv


def convert_hf_dinov2(state_dict: StateDict) -> Conversion:
    """HF ``Dinov2Model`` / ``Dinov2WithRegistersModel`` -> official DINOv2 layout (see module doc).

    ``mask_token`` stays: timm recognises the DINOv2 layout by it (and then removes it); it is
    recorded as dropped.
    """
    conv = Conversion(legacy_hf_names(strip_task_prefix(state_dict)))
    conv.drop_matching(POOLER, r'pooler\.')
    sd = fuse_qkv(conv.state_dict, _QKV, 'blocks.{block}.attn.qkv.{kind}')
    conv.state_dict = rename(sd, HF_DINOV2_RULES)
    if 'mask_token' in conv.state_dict:
        conv.dropped[MASK_TOKEN] = ['embeddings.mask_token']
    return conv
