"""Layouts that timm models already speak, up to a few extra keys: official DINOv2, MAE, BEiT.

* Official DINOv2 / DINOv2 with registers (facebookresearch): converted by timm's own
  ``vision_transformer.checkpoint_filter_fn`` (``register_tokens`` -> ``reg_token``, the class
  token's position embedding folded into the class token for register models, SwiGLU ``w12``/
  ``w3`` -> ``fc1``/``fc2``). timm recognises the layout by its ``mask_token``, which it removes.
  Without a target model, a parameter-free timm shell of the checkpoint's geometry runs it.
* MAE (facebookresearch/mae): the encoder is timm's layout; the decoder (``decoder_*``) and
  ``mask_token`` are pretraining-only and dropped.
* BEiT / BEiT v2 (microsoft/unilm): timm's ``beit`` layout. Pretraining checkpoints share one
  relative position bias between blocks (``rel_pos_bias.*``); it is copied into every block, as
  BEiT's own fine-tuning does. ``mask_token``, ``lm_head`` and BEiT v2's ``cls_pt_layers`` are
  pretraining-only and dropped; ``relative_position_index`` buffers are rebuilt by timm.
"""
import math
import re

import torch

from .renaming import MASK_TOKEN, Conversion, StateDict

MAE_DECODER = 'MAE decoder (pretraining only, not part of the encoder)'
BEIT_PRETRAIN = 'BEiT pretraining head (lm_head, cls_pt_layers)'
REL_POS_INDEX = 'relative position index (a buffer timm rebuilds)'


def mark_dinov2(state_dict: StateDict) -> Conversion:
    """Official DINOv2 layout: kept for timm's filter, which removes ``mask_token`` (recorded as
    dropped here). A checkpoint saved without it gets a zero one: timm detects the layout by it."""
    conv = Conversion(state_dict)
    if 'mask_token' not in conv.state_dict:
        conv.state_dict['mask_token'] = torch.zeros(1, state_dict['cls_token'].shape[-1])
    else:
        conv.dropped[MASK_TOKEN] = ['mask_token']
    return conv


def dinov2_shell(state_dict: StateDict) -> torch.nn.Module:
    """A weightless (meta device, no blocks) timm VisionTransformer with the geometry of an
    official DINOv2 checkpoint, so timm's ``checkpoint_filter_fn`` can convert it without the
    real model: same patch size, width, position grid and register count."""
    from timm.models.vision_transformer import VisionTransformer
    patch = state_dict['patch_embed.proj.weight'].shape[-1]
    width = state_dict['cls_token'].shape[-1]
    registers = state_dict['register_tokens'].shape[1] if 'register_tokens' in state_dict else 0
    grid = math.isqrt(state_dict['pos_embed'].shape[1] - 1)
    with torch.device('meta'):
        return VisionTransformer(img_size=grid * patch, patch_size=patch, embed_dim=width, depth=0,
                                 num_heads=1, reg_tokens=registers, no_embed_class=registers > 0,
                                 num_classes=0)


def convert_mae(state_dict: StateDict) -> Conversion:
    """MAE pretraining checkpoint -> its encoder, in timm layout."""
    conv = Conversion(state_dict)
    conv.drop_matching(MAE_DECODER, r'decoder_')
    conv.drop(MASK_TOKEN, ['mask_token'])
    return conv


def convert_beit(state_dict: StateDict) -> Conversion:
    """BEiT / BEiT v2 (pretraining or fine-tuned) -> timm ``beit`` layout."""
    conv = Conversion(state_dict)
    conv.drop(MASK_TOKEN, ['mask_token'])
    conv.drop_matching(BEIT_PRETRAIN, r'(lm_head|cls_pt_layers)\.')
    conv.drop_matching(REL_POS_INDEX, r'.*relative_position_index$')
    shared = conv.state_dict.pop('rel_pos_bias.relative_position_bias_table', None)
    if shared is not None:
        blocks = sorted({int(m.group(1)) for k in conv.state_dict
                         if (m := re.match(r'blocks\.(\d+)\.', k))})
        for i in blocks:
            conv.state_dict.setdefault(f'blocks.{i}.attn.relative_position_bias_table', shared.clone())
    return conv
