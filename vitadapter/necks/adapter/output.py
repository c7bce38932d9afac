"""The adapter's output stage: the four pyramid levels from the spatial prior (and the ViT).

* c2 (stride 8) is upsampled by a 2x2 transposed convolution (``up``) and added to c1 (stride 4),
  which took no part in the interactions;
* optionally (``add_vit_feature``, official default) the map of interaction i's last block is
  resampled onto level i's grid and added to it, pixel centres aligned (stride 16 -> 4 and 8:
  bilinear upsampling, -> 32: the mean of 2x2 neighbours, as the official bilinear resizing by
  4, 2 and 0.5 does for inputs divisible by 32; a patch-14 grid is resampled the same way);
* a norm per level (official: SyncBN; ``norms.i`` here, ``norm{i+1}`` there).

``up`` reads c2 in channels-last memory format (c2 comes from the prior tokens, which are that
layout already, so for one image there is no copy): the CPU's transposed convolution is about 2.5x
faster so, with the same values. In eager mode the whole stage runs on channels-last
(B, h, w, C) tensors (:meth:`AdapterOutput._channels_last_levels`: ``up`` and the resampling as
GEMMs, the sums without layout changes; one copy to NCHW after the norms); traced and compiled
graphs use the modules as they are.
"""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...layers import build_norm2d, crop_top_left, he_normal_fan_out_, is_static, resample_to_grid


class AdapterOutput(nn.Module):
    """c1..c4 (+ resized ViT maps) -> normed pyramid levels.

    Args:
        embed_dim: channels C of every level.
        add_vit_feature: add the interactions' ViT maps (needs one per level).
        norm_cfg: the per-level norm (default BN).

    forward(priors, vit_maps, vit_stride): priors: c1..c4 (B, C, ceil(H/s), ceil(W/s)) for
    s = 4, 8, 16, 32; vit_maps: 4 maps (B, C, h, w) on the patch grid of ``vit_stride`` pixels ->
    4 NCHW-contiguous maps shaped as c1..c4.
    """

    strides = (4, 8, 16, 32)

    def __init__(self, embed_dim: int, add_vit_feature: bool = True, norm_cfg: Optional[dict] = None):
        super().__init__()
        self.up = nn.ConvTranspose2d(embed_dim, embed_dim, kernel_size=2, stride=2)
        he_normal_fan_out_(self.up)
        self.add_vit_feature = add_vit_feature
        self.norms = nn.ModuleList(build_norm2d(norm_cfg, embed_dim) for _ in self.strides)

    def forward(self, priors: Sequence[torch.Tensor], vit_maps: Sequence[torch.Tensor],
                vit_stride: Sequence[int]) -> List[torch.Tensor]:
        if self.add_vit_feature and len(vit_maps) != len(priors):
            raise ValueError(f"add_vit_feature needs one ViT map per level ({len(priors)}), got "
                             f"{len(vit_maps)}: use 4 interactions or add_vit_feature=False")
        if channels_last_path_applies(*priors, *vit_maps):
            levels = self._channels_last_levels(priors, vit_maps, vit_stride)
        else:
            levels = self._levels(priors, vit_maps, vit_stride)
        # NCHW-contiguous out, as the pyramid necks: the eager stage works on channels-last
        # tensors, and heads written for NCHW (mmseg's UPerHead) would otherwise run their
        # stride-4 chain on channels-last kernels with mixed layouts (slow with AVX2 code paths)
        return [norm(y).contiguous() for norm, y in zip(self.norms, levels)]

    def _levels(self, priors, vit_maps, vit_stride) -> List[torch.Tensor]:
        """The levels before their norms, with the modules as they are (traced / compiled code)."""
        c1, c2, c3, c4 = priors
        up = self.up(c2.contiguous(memory_format=torch.channels_last))
        levels = [c1 + crop_top_left(up, c1.shape[-2:]), c2, c3, c4]  # 2 * ceil(H/8) >= ceil(H/4)
        if self.add_vit_feature:
            levels = [y + resample_to_grid(v, vit_stride, (s, s), y.shape[-2:])
                      for y, v, s in zip(levels, vit_maps, self.strides)]
        return levels

    def _channels_last_levels(self, priors, vit_maps, vit_stride) -> List[torch.Tensor]:
        """The same levels computed on (B, h, w, C) tensors (eager mode, static sizes): ``up`` as
        one GEMM over c2's channels whose 2x2 outputs per cell are interleaved by the addition to
        c1 itself (no separate upsampled map), the ViT maps resampled by two GEMMs over rows and
        columns of the channels-last tokens (no NCHW intermediate), every sum channels-last.
        Returns (B, C, h, w) views of channels-last memory."""
        c1, c2, c3, c4 = [p.permute(0, 2, 3, 1) for p in priors]  # (B, h, w, C) views
        b, h2, w2, channels = c2.shape
        h1, w1 = c1.shape[1:3]
        # ConvTranspose2d(k=2, s=2): out[2i + di, 2j + dj, o] = b[o] + sum_c x[i, j, c] W[c, o, di, dj]
        weight = self.up.weight.permute(0, 2, 3, 1).reshape(self.up.in_channels, -1)  # (C, [di, dj, o])
        up = F.linear(c2, weight.t(), self.up.bias.repeat(4)).view(b, h2, w2, 2, 2, -1)
        up = up.permute(0, 1, 3, 2, 4, 5)  # (B, h2, di, w2, dj, C)
        if (h1, w1) == (2 * h2, 2 * w2):
            first = (c1.reshape(b, h2, 2, w2, 2, channels) + up).view(b, h1, w1, channels)
        else:  # 2 * ceil(H/8) > ceil(H/4): crop the upsampled map
            first = c1 + up.reshape(b, 2 * h2, 2 * w2, channels)[:, :h1, :w1]
        levels = [first, c2, c3, c4]
        if self.add_vit_feature:
            vit = [v.permute(0, 2, 3, 1) for v in vit_maps]
            levels = [y + resample_to_grid(v, vit_stride, (s, s), y.shape[1:3], layout='NHWC')
                      for y, v, s in zip(levels, vit, self.strides)]
        return [y.permute(0, 3, 1, 2) for y in levels]


def channels_last_path_applies(*maps: torch.Tensor) -> bool:
    """Eager mode with plain int sizes (a traced or compiled graph keeps the modules as they are)."""
    return (not torch.jit.is_tracing() and not torch.jit.is_scripting()
            and not torch.compiler.is_compiling() and is_static(*(s for m in maps for s in m.shape)))
