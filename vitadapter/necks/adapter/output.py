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
faster so, with the same values.
"""
import math
from typing import List, Optional, Sequence

import torch
import torch.nn as nn

from ...geometry import crop_top_left, resample_to_grid
from ..norm import build_norm2d


class AdapterOutput(nn.Module):
    """c1..c4 (+ resized ViT maps) -> normed pyramid levels.

    Args:
        embed_dim: channels C of every level.
        add_vit_feature: add the interactions' ViT maps (needs one per level).
        norm_cfg: the per-level norm (default BN).

    forward(priors, vit_maps, vit_stride): priors: c1..c4 (B, C, ceil(H/s), ceil(W/s)) for
    s = 4, 8, 16, 32; vit_maps: 4 maps (B, C, h, w) on the patch grid of ``vit_stride`` pixels ->
    4 maps shaped as c1..c4.
    """

    strides = (4, 8, 16, 32)

    def __init__(self, embed_dim: int, add_vit_feature: bool = True, norm_cfg: Optional[dict] = None):
        super().__init__()
        self.up = nn.ConvTranspose2d(embed_dim, embed_dim, kernel_size=2, stride=2)
        fan_out = 4 * embed_dim
        nn.init.normal_(self.up.weight, 0, math.sqrt(2.0 / fan_out))
        nn.init.zeros_(self.up.bias)
        self.add_vit_feature = add_vit_feature
        self.norms = nn.ModuleList(build_norm2d(norm_cfg, embed_dim) for _ in self.strides)

    def forward(self, priors: Sequence[torch.Tensor], vit_maps: Sequence[torch.Tensor],
                vit_stride: Sequence[int]) -> List[torch.Tensor]:
        c1, c2, c3, c4 = priors
        up = self.up(c2.contiguous(memory_format=torch.channels_last))
        levels = [c1 + crop_top_left(up, c1.shape[-2:]), c2, c3, c4]  # 2 * ceil(H/8) >= ceil(H/4)
        if self.add_vit_feature:
            if len(vit_maps) != len(levels):
                raise ValueError(f"add_vit_feature needs one ViT map per level ({len(levels)}), got "
                                 f"{len(vit_maps)}: use 4 interactions or add_vit_feature=False")
            levels = [y + resample_to_grid(v, vit_stride, (s, s), y.shape[-2:])
                      for y, v, s in zip(levels, vit_maps, self.strides)]
        return [norm(y) for norm, y in zip(self.norms, levels)]
