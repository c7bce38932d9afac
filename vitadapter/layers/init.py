"""Weight initialisations the heads and necks share (each matching the original implementation of
the module that uses it)."""
import math

import torch.nn as nn


def he_normal_fan_out_(conv: nn.Module) -> None:
    """He-normal over fan-out, zero bias (torchvision's ResNet convention, ViT-Adapter's convs):
    ``N(0, 2 / (k_h * k_w * out_channels / groups))``, for ``nn.Conv2d`` and ``nn.ConvTranspose2d``."""
    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
    nn.init.normal_(conv.weight, 0, math.sqrt(2.0 / fan_out))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def caffe2_xavier_(conv: nn.Module) -> None:
    """Detectron2's c2_xavier_fill (mmengine's ``caffe2_xavier_init``): kaiming-uniform, a=1, fan
    in; zero bias."""
    nn.init.kaiming_uniform_(conv.weight, a=1)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def unit_norm_(norm: nn.Module) -> None:
    """Weight 1, bias 0 for an affine norm layer (nothing for one without parameters)."""
    if getattr(norm, 'weight', None) is not None:
        nn.init.ones_(norm.weight)
    if getattr(norm, 'bias', None) is not None:
        nn.init.zeros_(norm.bias)
