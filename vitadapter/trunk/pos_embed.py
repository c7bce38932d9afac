"""Choosing how a timm VisionTransformer interpolates its position embeddings at run time.

timm resamples the stored position embeddings to every input's patch grid with bicubic
interpolation and antialias. Weights from Hugging Face, mmseg or the official DINOv2 code were
trained and are used with other rules (see :mod:`vitadapter.weights.interpolation`); to give the
same features as those implementations at sizes other than the stored one, the trunk can use
their rule instead. The choice replaces the model's ``_pos_embed`` step and nothing else: the
parameters, their names and the state dict are unchanged.
"""
import types

import torch
from timm.models.vision_transformer import VisionTransformer

from ..weights.interpolation import check_interpolation, interpolate_pos_grid


def _pos_embed_with_rule(self: VisionTransformer, x: torch.Tensor) -> torch.Tensor:
    """timm's ``VisionTransformer._pos_embed`` with the interpolation rule ``self.pos_embed_interp``.

    x: (B, H, W, C) patch tokens (dynamic image size). Returns (B, prefix + H * W, C).
    """
    batch, height, width, dim = x.shape
    num_prefix = 0 if self.no_embed_class else self.num_prefix_tokens
    grid = interpolate_pos_grid(self.pos_embed[:, num_prefix:], self.patch_embed.grid_size,
                                (height, width), self.pos_embed_interp)
    pos_embed = torch.cat([self.pos_embed[:, :num_prefix], grid], dim=1) if num_prefix else grid
    x = x.reshape(batch, height * width, dim)
    prefix = [t.expand(batch, -1, -1) for t in (self.cls_token, self.reg_token) if t is not None]
    if self.no_embed_class:  # position embeddings cover the patches only (DeiT-3, DINOv2-reg)
        x = torch.cat(prefix + [x + pos_embed], dim=1)
    else:  # they cover the prefix tokens too
        x = torch.cat(prefix + [x], dim=1) + pos_embed
    return self.pos_drop(x)


def supports_pos_embed_interpolation(model: torch.nn.Module) -> bool:
    """Whether :func:`set_pos_embed_interpolation` can change ``model``'s rule."""
    return isinstance(model, VisionTransformer) and getattr(model, 'pos_embed', None) is not None \
        and bool(model.dynamic_img_size)


def set_pos_embed_interpolation(model: torch.nn.Module, name: str) -> None:
    """Make ``model`` interpolate its position embeddings with rule ``name`` ('timm' restores timm's)."""
    check_interpolation(name)
    if name == 'timm':
        model.__dict__.pop('_pos_embed', None)
        model.__dict__.pop('pos_embed_interp', None)
        return
    if not isinstance(model, VisionTransformer) or getattr(model, 'pos_embed', None) is None:
        raise ValueError(f"pos_embed_interp={name!r} needs a timm VisionTransformer with absolute "
                         f"position embeddings; {type(model).__name__} interpolates its own way "
                         f"(use pos_embed_interp='timm')")
    if not model.dynamic_img_size:
        raise ValueError(f"pos_embed_interp={name!r} needs a model built with dynamic_img_size=True")
    model.pos_embed_interp = name
    model._pos_embed = types.MethodType(_pos_embed_with_rule, model)
