"""How each implementation interpolates absolute position embeddings to another patch grid.

The same weights give different features at a size other than the stored one when the position
embeddings are interpolated differently. Each original implementation has its own rule:

================  =========================================================  ====================
name              rule                                                        used by
================  =========================================================  ====================
``'timm'``        bicubic, ``antialias=True``, to the output size             timm; DINOv2 with
                                                                              registers (official
                                                                              and HF
                                                                              ``Dinov2WithRegisters``)
``'bicubic'``     bicubic, no antialias, ``align_corners=False``, to the      HF ``ViTModel`` and
                  output size                                                 ``Dinov2Model``;
                                                                              mmseg and mmpretrain
                                                                              ``VisionTransformer``
``'dinov2'``      bicubic, no antialias, to the scale factor                  official DINOv2
                  ``(n + 0.1) / N`` per side (n new, N stored patches)        without registers
================  =========================================================  ====================

Bicubic with antialias uses another kernel (a = -0.5, PIL's) than without (a = -0.75), so
``'timm'`` and ``'bicubic'`` differ even when upsampling. With a scale factor, PyTorch maps output
pixels through the given factor, not through the size ratio, so ``'dinov2'`` differs slightly from
``'bicubic'``.
"""
from typing import Dict, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed


class PosEmbedInterpolation(NamedTuple):
    """One interpolation rule: ``antialias`` and the scale-factor offset (0 = use the size)."""
    antialias: bool
    offset: float
    description: str


POS_EMBED_INTERPOLATIONS: Dict[str, PosEmbedInterpolation] = {
    'timm': PosEmbedInterpolation(True, 0.0, "bicubic with antialias (timm, DINOv2 with registers)"),
    'bicubic': PosEmbedInterpolation(False, 0.0, "bicubic without antialias (HF ViT/Dinov2, mmseg, "
                                                 "mmpretrain)"),
    'dinov2': PosEmbedInterpolation(False, 0.1, "bicubic without antialias to the scale factor "
                                                "(n + 0.1) / N (official DINOv2)"),
}


def check_interpolation(name: str) -> PosEmbedInterpolation:
    """The rule called ``name``; a ValueError naming the choices otherwise."""
    if name not in POS_EMBED_INTERPOLATIONS:
        raise ValueError(f"pos_embed_interp={name!r} is not one of {sorted(POS_EMBED_INTERPOLATIONS)} "
                         f"(None follows the checkpoint's source)")
    return POS_EMBED_INTERPOLATIONS[name]


def interpolate_pos_grid(pos_embed: torch.Tensor, old_size: Sequence[int], new_size: Sequence[int],
                         name: str) -> torch.Tensor:
    """Interpolate grid position embeddings with rule ``name``.

    pos_embed: (1, old_h * old_w, C), patch positions only (prefix tokens split off).
    Returns (1, new_h * new_w, C) in the input dtype (computed in float32, as every source does).
    """
    rule = check_interpolation(name)
    old_h, old_w = int(old_size[0]), int(old_size[1])
    new_h, new_w = new_size[0], new_size[1]  # symbolic when traced with dynamic shapes (ONNX)
    symbolic = isinstance(new_h, torch.SymInt) or isinstance(new_w, torch.SymInt)
    if not symbolic:
        new_h, new_w = int(new_h), int(new_w)
    if not symbolic and (old_h, old_w) == (new_h, new_w):
        return pos_embed  # (a traced graph interpolates even to the stored size: the identity)
    if not rule.offset:  # a rule timm's own resampling covers (align_corners=False, its default)
        return resample_abs_pos_embed(pos_embed, [new_h, new_w], [old_h, old_w], num_prefix_tokens=0,
                                      interpolation='bicubic', antialias=rule.antialias)
    dim = pos_embed.shape[-1]
    grid = pos_embed.float().reshape(1, old_h, old_w, dim).permute(0, 3, 1, 2)
    scale = ((new_h + rule.offset) / old_h, (new_w + rule.offset) / old_w)
    grid = F.interpolate(grid, scale_factor=scale, mode='bicubic', antialias=rule.antialias)
    if not symbolic and tuple(grid.shape[-2:]) != (new_h, new_w):
        raise RuntimeError(f"pos_embed_interp={name!r} gave a {tuple(grid.shape[-2:])} grid, "
                           f"expected {(new_h, new_w)}")
    return grid.permute(0, 2, 3, 1).reshape(1, new_h * new_w, dim).to(pos_embed.dtype)
