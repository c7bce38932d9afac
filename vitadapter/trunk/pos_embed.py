"""A timm ViT's absolute position embedding at any patch grid, by a chosen interpolation rule.

timm resamples the stored position embeddings to every input's patch grid with bicubic
interpolation and antialias. Weights from Hugging Face, mmseg or the official DINOv2 code were
trained and are used with other rules (:mod:`vitadapter.weights.interpolation`); to give the same
features as those implementations at sizes other than the stored one, the trunk uses their rule,
chosen once when it is built. Parameters, names and the state dict are timm's, unchanged.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn

from ..weights.interpolation import interpolate_pos_grid


def has_abs_pos_embed(model: nn.Module) -> bool:
    """Whether ``model`` stores an absolute position embedding (RoPE-only models, DINOv3, do not)."""
    return isinstance(getattr(model, 'pos_embed', None), torch.Tensor)


def stored_prefix_positions(model: nn.Module) -> int:
    """How many prefix tokens (class, registers) the stored position embedding covers: 0 when the
    model adds it to the patches only (``no_embed_class``: DeiT-3, DINOv2 with registers)."""
    if getattr(model, 'no_embed_class', False):
        return 0
    h, w = model.patch_embed.grid_size
    return model.pos_embed.shape[1] - h * w


def position_embedding(model: nn.Module, grid: Sequence[int], rule: str) -> Optional[torch.Tensor]:
    """(1, P_pos + h * w, C): the stored position embedding with its patch part interpolated to
    ``grid`` = (h, w) by ``rule`` ('timm', 'bicubic', 'dinov2'); P_pos =
    :func:`stored_prefix_positions`. None for a model without one."""
    if not has_abs_pos_embed(model):
        return None
    prefix = stored_prefix_positions(model)
    patches = interpolate_pos_grid(model.pos_embed[:, prefix:], model.patch_embed.grid_size, grid, rule)
    return torch.cat([model.pos_embed[:, :prefix], patches], dim=1) if prefix else patches
