"""Necks that turn single-stride ViT maps into multi-scale pyramids."""
from typing import Optional, Sequence

from ..layers import DEFAULT_NORM_CFG
from .extra_levels import LastLevelMaxPool
from .pyramid import Feature2PyramidNeck, IdentityNeck, SimpleFeaturePyramidNeck, check_scales

PYRAMID_STYLES = ('simple', 'feature2pyramid', 'none')


def build_pyramid_neck(style: str, in_channels: int, scales: Sequence[float], num_inputs: int,
                       out_channels: Optional[int] = None, norm_cfg: Optional[dict] = DEFAULT_NORM_CFG):
    """Build the pyramid neck named by ``style``: 'feature2pyramid' keeps the channels and takes no
    ``out_channels``; 'simple' halves the channels per upsampling step and, with ``out_channels``,
    maps every level to it with ViTDet's 1x1 + 3x3 convolutions; 'none' returns the block maps
    themselves, one level per block, all at the trunk's stride (linear probing, DPT-style heads)."""
    if style == 'none':
        if out_channels is not None:
            raise ValueError("pyramid='none' returns the trunk's maps: out_channels must be None")
        return IdentityNeck(in_channels, num_inputs)
    if style == 'feature2pyramid':
        if out_channels is not None and out_channels != in_channels:
            raise ValueError(f"pyramid style 'feature2pyramid' keeps the trunk's {in_channels} channels; "
                             f"out_channels={out_channels} needs style='simple'")
        return Feature2PyramidNeck(in_channels, scales, num_inputs, norm_cfg)
    if style == 'simple':
        return SimpleFeaturePyramidNeck(in_channels, out_channels, scales, num_inputs, norm_cfg)
    raise ValueError(f"unknown pyramid style {style!r}; choose one of {PYRAMID_STYLES}")


__all__ = ['Feature2PyramidNeck', 'IdentityNeck', 'SimpleFeaturePyramidNeck', 'LastLevelMaxPool',
           'build_pyramid_neck', 'check_scales', 'PYRAMID_STYLES']
