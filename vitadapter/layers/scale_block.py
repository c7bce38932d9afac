"""EoMT's upscaling of the patch map (Kerssies et al., CVPR 2025): the "scale blocks" that bring a
ViT's patch map to stride 4 for the mask logits, shared by EoMT and PMT."""
import math
from typing import Sequence

import torch
import torch.nn as nn
from timm.layers import LayerNorm2d


class ScaleBlock(nn.Module):
    """ConvTranspose2d(C, C, 2, stride 2) -> GELU -> depthwise 3x3 (no bias) -> LayerNorm2d.

    Parameter names: ``conv1``, ``conv2``, ``norm`` (tue-mps/eomt's). forward: (B, C, h, w) ->
    (B, C, 2h, 2w).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.conv1 = nn.ConvTranspose2d(dim, dim, kernel_size=2, stride=2)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim, bias=False)
        self.norm = LayerNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv2(self.act(self.conv1(x))))


def num_scale_blocks(patch_size: Sequence[int]) -> int:
    """How many 2x blocks bring a patch map towards stride 4: ``max(1, floor(log2(patch)) - 2)``
    (patch 16: 2, stride 4; patch 14: 1, stride 7; patch 8: 1, stride 4), as EoMT counts them."""
    return max(1, int(math.log2(max(patch_size))) - 2)


def scale_blocks(dim: int, patch_size: Sequence[int]) -> nn.Sequential:
    """EoMT's upscaler for a patch map of ``patch_size`` pixels: :func:`num_scale_blocks` blocks."""
    return nn.Sequential(*[ScaleBlock(dim) for _ in range(num_scale_blocks(patch_size))])
