"""The spatial prior module: a small convolutional stem giving local, multi-scale features.

A ResNet-style stem (three 3x3 convolutions, the first with stride 2, then a stride-2 max pool)
gives c1 at stride 4; three stride-2 3x3 convolutions give c2, c3, c4 at strides 8, 16, 32. Each is
projected to the ViT width by a 1x1 convolution (``fc1``..``fc4``). Channels: ``inplanes`` (64) at
stride 4, 2x at 8, 4x at 16 and 32. Layer names and order are the official ones
(``stem.0`` conv, ``stem.1`` norm, ...), so official checkpoints load unchanged.

The stem runs in channels-last memory format (the CPU's convolutions and max pooling are about
1.6x faster so; the values are the same): the input is converted once, and the outputs are
channels-last maps, read as tokens without a copy. The 1x1 projections ``fc1``..``fc4`` run as
linear layers over those channels-last maps (:func:`pointwise`: the same weights and values, one
GEMM each way instead of the convolution's im2col path).

Every stride-2 layer has kernel 3 and padding 1, so an H x W input gives exactly
``ceil(H / s) x ceil(W / s)`` maps, for any H and W.
"""
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...layers import build_norm2d, he_normal_fan_out_, unit_norm_


def conv_norm_relu(in_channels: int, out_channels: int, stride: int,
                   norm_cfg: Optional[dict]) -> List[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
            build_norm2d(norm_cfg, out_channels), nn.ReLU(inplace=True)]


class SpatialPriorModule(nn.Module):
    """Conv stem -> c1..c4 (strides 4, 8, 16, 32), each projected to ``embed_dim``.

    Args:
        embed_dim: output channels (the ViT width).
        inplanes: stem width (official: 64).
        norm_cfg: norm after every convolution (official: SyncBN; default BN).

    Input (B, 3, H, W) -> list of 4 maps (B, embed_dim, ceil(H/s), ceil(W/s)), s = 4, 8, 16, 32.
    """

    def __init__(self, embed_dim: int, inplanes: int = 64, norm_cfg: Optional[dict] = None):
        super().__init__()
        self.stem = nn.Sequential(
            *conv_norm_relu(3, inplanes, 2, norm_cfg),
            *conv_norm_relu(inplanes, inplanes, 1, norm_cfg),
            *conv_norm_relu(inplanes, inplanes, 1, norm_cfg),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        self.conv2 = nn.Sequential(*conv_norm_relu(inplanes, 2 * inplanes, 2, norm_cfg))
        self.conv3 = nn.Sequential(*conv_norm_relu(2 * inplanes, 4 * inplanes, 2, norm_cfg))
        self.conv4 = nn.Sequential(*conv_norm_relu(4 * inplanes, 4 * inplanes, 2, norm_cfg))
        self.fc1 = nn.Conv2d(inplanes, embed_dim, kernel_size=1)
        self.fc2 = nn.Conv2d(2 * inplanes, embed_dim, kernel_size=1)
        self.fc3 = nn.Conv2d(4 * inplanes, embed_dim, kernel_size=1)
        self.fc4 = nn.Conv2d(4 * inplanes, embed_dim, kernel_size=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation: He-normal over fan-out for convolutions, zero biases,
        unit norms."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                he_normal_fan_out_(m)
            elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
                unit_norm_(m)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        c1 = self.stem(x.contiguous(memory_format=torch.channels_last))
        c2 = self.conv2(c1)
        c3 = self.conv3(c2)
        c4 = self.conv4(c3)
        return [pointwise(fc, c) for fc, c in zip((self.fc1, self.fc2, self.fc3, self.fc4), (c1, c2, c3, c4))]


def pointwise(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution (B, C, H, W) -> (B, E, H, W) as a linear layer over the channels of the
    channels-last map: one GEMM, forward and backward (the CPU's 1x1 convolution runs a slower
    im2col path, and its backward copies); the result is a channels-last map, the same values."""
    out = F.linear(x.permute(0, 2, 3, 1), conv.weight.flatten(1), conv.bias)  # (B, H, W, E)
    return out.permute(0, 3, 1, 2)
