"""OpenMMLab ``VisionTransformer`` weights (mmsegmentation and mmpretrain) -> timm layout.

Both name blocks ``layers.N`` with ``ln1``/``ln2`` norms and an mmcv ``FFN``
(``ffn.layers.0.0`` = fc1, ``ffn.layers.1`` = fc2), the patch embedding ``patch_embed.projection``
and the final norm ``ln1``. They differ in attention:

* mmseg wraps ``torch.nn.MultiheadAttention``: ``attn.attn.in_proj_weight`` (3C, C, q/k/v stacked,
  as timm's ``qkv``) and ``attn.attn.out_proj``; its CLIP-style pre-norm is ``ln_pre``.
* mmpretrain has ``attn.qkv`` / ``attn.proj`` like timm, layer scale ``attn.gamma1.weight`` /
  ``ffn.gamma2.weight``, pre-norm ``pre_norm`` and, for ``out_type='avg_featmap'``, ``ln2``
  (timm's ``fc_norm``). mmseg's ``BEiT``/``MAE`` backbones use this attention layout too, with
  timm's BEiT names for what is BEiT's own (``q_bias``, ``relative_position_bias_table``,
  ``gamma_1``).

Full segmentor or classifier checkpoints (``backbone.*`` beside ``decode_head.*``...) reach here
with the backbone already taken out (see :func:`vitadapter.weights.formats.split_vit`).
"""
import torch

from .renaming import Conversion, StateDict, rename

_LAYER = r'layers\.(\d+)\.'

MM_RULES = (
    (r'patch_embed\.projection\.(weight|bias)', r'patch_embed.proj.\1'),
    (_LAYER + r'ln([12])\.(weight|bias)', r'blocks.\1.norm\2.\3'),
    (_LAYER + r'attn\.attn\.in_proj_(weight|bias)', r'blocks.\1.attn.qkv.\2'),
    (_LAYER + r'attn\.attn\.out_proj\.(weight|bias)', r'blocks.\1.attn.proj.\2'),
    (_LAYER + r'attn\.gamma1\.weight', r'blocks.\1.ls1.gamma'),
    (_LAYER + r'ffn\.gamma2\.weight', r'blocks.\1.ls2.gamma'),
    (_LAYER + r'ffn\.layers\.0\.0\.(weight|bias)', r'blocks.\1.mlp.fc1.\2'),
    (_LAYER + r'ffn\.layers\.1\.(weight|bias)', r'blocks.\1.mlp.fc2.\2'),
    (_LAYER + r'(.+)', r'blocks.\1.\2'),  # attn.qkv, attn.proj, gamma_1, q_bias...: timm's names
    (r'ln1\.(weight|bias)', r'norm.\1'),
    (r'ln2\.(weight|bias)', r'fc_norm.\1'),
    (r'(?:ln_pre|pre_norm)\.(weight|bias)', r'norm_pre.\1'),
)


def convert_openmmlab_vit(state_dict: StateDict) -> Conversion:
    """mmseg / mmpretrain ``VisionTransformer`` (or mmseg BEiT/MAE) -> timm layout."""
    conv = Conversion(state_dict)
    conv.drop_matching('relative position index (a buffer timm rebuilds)', r'.*relative_position_index$')
    conv.state_dict = rename(conv.state_dict, MM_RULES)
    weight = conv.state_dict.get('patch_embed.proj.weight')
    if weight is not None and 'patch_embed.proj.bias' not in conv.state_dict and \
            'norm_pre.weight' not in conv.state_dict:
        # mmseg's VisionTransformer defaults to patch_bias=False; timm's ViT has a bias unless it
        # has a pre-norm (CLIP), exactly when mmpretrain's has none. No bias == a zero bias.
        conv.state_dict['patch_embed.proj.bias'] = torch.zeros(weight.shape[0], dtype=weight.dtype)
        conv.notes.append("the checkpoint's patch embedding has no bias (mmseg's patch_bias=False): "
                          "patch_embed.proj.bias set to zero")
    return conv
