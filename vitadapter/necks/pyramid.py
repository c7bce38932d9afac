"""Pyramid necks: single-stride ViT maps -> a multi-scale pyramid.

A ViT gives maps at one stride (16). A pyramid neck rescales them to the strides dense heads
expect. Each output level has a *scale* relative to the input maps (4, 2, 1, 0.5 -> strides 4, 8,
16, 32 for a stride-16 input), built from three operations:

* scale 2**k, k > 0: k transposed convolutions (kernel 2, stride 2), norm + GELU between them;
* scale 1: identity;
* scale 2**-k: max pooling with kernel and stride 2**k (``ceil_mode``, so no row is dropped).

Scales must be powers of two from 1/8 to 8, listed from the largest to the smallest (strides
increasing, as timm's ``feature_info`` requires). Two styles:

* :class:`Feature2PyramidNeck` keeps the channels (mmsegmentation's ``Feature2Pyramid``): every
  level has the ViT width. Cheapest when the head reduces channels anyway.
* :class:`SimpleFeaturePyramidNeck` (detectron2 ViTDet's ``SimpleFeaturePyramid``) halves the
  channels at every upsampling step, then maps each level to ``out_channels`` with a 1x1 and a 3x3
  convolution, each followed by a norm; with ``out_channels=None`` it stops after the halving
  (vitadapter's default: the cheapest pyramid, for heads with their own convolutions).

Inputs: either one map per level (e.g. blocks 3, 5, 7, 11 for levels 4x, 2x, 1x, 0.5x, as in
ViT-Adapter and mmseg) or a single map used for every level (ViTDet's last-block pyramid).
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers import DEFAULT_NORM_CFG, build_norm2d, ceil_div, checkpoint_if, is_static

MAX_SCALE_STEPS = 3  # scales from 1/8 to 8


def check_scales(scales: Sequence[float]) -> Tuple[float, ...]:
    """Validate pyramid scales: powers of two in [1/8, 8], strictly decreasing."""
    scales = tuple(float(s) for s in scales)
    if not scales:
        raise ValueError("scales is empty: give at least one level, e.g. scales=(4, 2, 1, 0.5)")
    for s in scales:
        steps = math.log2(s) if s > 0 else float('nan')
        if not (steps == steps and steps == round(steps) and abs(steps) <= MAX_SCALE_STEPS):
            raise ValueError(
                f"pyramid scale {s:g} is not supported: scales must be powers of two from 1/8 to 8 "
                f"(e.g. 4, 2, 1, 0.5, 0.25), got scales={scales}")
    if any(a <= b for a, b in zip(scales, scales[1:])):
        raise ValueError(f"scales must be strictly decreasing (strides increasing, e.g. "
                         f"(4, 2, 1, 0.5)), got {scales}")
    return scales


class CeilMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d(k, stride=k, ceil_mode=True)``: a last, partial window keeps the rows and
    columns that do not fill a whole one. Traced with symbolic sizes (ONNX export), the map is
    padded with -inf to a multiple of ``k`` and pooled without ``ceil_mode`` instead: the same
    maxima, and no guard on the input size (``ceil_mode``'s output size has a branch the tracer
    cannot decide for every size)."""

    def __init__(self, kernel_size: int):
        super().__init__(kernel_size=kernel_size, stride=kernel_size, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if is_static(*x.shape[-2:]):
            return super().forward(x)
        k = self.kernel_size
        h, w = x.shape[-2:]
        x = F.pad(x, (0, ceil_div(w, k) * k - w, 0, ceil_div(h, k) * k - h), value=float('-inf'))
        return F.max_pool2d(x, k, k)


def _scale_steps(scale: float) -> int:
    return int(round(math.log2(scale)))


def rescale_layers(scale: float, channels: Sequence[int], norm_cfg: Optional[dict]) -> List[nn.Module]:
    """Layers that rescale a map by ``scale``.

    For an upsampling scale 2**k, ``channels`` holds the k + 1 channel counts along the way
    (input first); otherwise it holds the input channel count only.
    """
    steps = _scale_steps(scale)
    if steps <= 0:
        if len(channels) != 1:
            raise ValueError(f"scale {scale:g} keeps the channels: give one channel count")
        return [nn.Identity()] if steps == 0 else [
            CeilMaxPool2d(2 ** -steps)]
    if len(channels) != steps + 1:
        raise ValueError(f"scale {scale:g} needs {steps + 1} channel counts, got {channels}")
    layers: List[nn.Module] = []
    for i in range(steps):
        if i > 0:
            layers += [build_norm2d(norm_cfg, channels[i]), nn.GELU()]
        layers.append(nn.ConvTranspose2d(channels[i], channels[i + 1], kernel_size=2, stride=2))
    return layers


class _PyramidNeck(nn.Module):
    """Common part of the pyramid necks: input/level pairing and the forward pass.

    Subclasses fill ``self.levels`` (one ``nn.Sequential`` per scale) and ``self.out_channels``.
    """

    def __init__(self, in_channels: int, scales: Sequence[float], num_inputs: int):
        super().__init__()
        self.in_channels = int(in_channels)
        self.scales = check_scales(scales)
        if num_inputs not in (1, len(self.scales)):
            raise ValueError(
                f"the pyramid has {len(self.scales)} levels (scales={self.scales}) but receives "
                f"{num_inputs} block outputs: give one block per level, or one block for all "
                f"levels (out_indices=(-1,) for a ViTDet-style pyramid)")
        self.num_inputs = num_inputs
        self.levels = nn.ModuleList()
        self.out_channels: List[int] = []
        # recompute each level's inner activations in the backward pass (ViTPyramid turns this on
        # with the trunk's grad checkpointing): the upsampling levels' norms, GELUs and
        # intermediate maps are then not stored.
        self.grad_checkpointing = False

    def _run_level(self, level: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return checkpoint_if(self.grad_checkpointing and len(level) > 1, level, x)

    def forward(self, maps: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """maps: ``num_inputs`` tensors (B, in_channels, h, w) -> one (B, out_channels[i], h * s_i,
        w * s_i) per level (ceil for downsampling)."""
        if len(maps) != self.num_inputs:
            raise ValueError(f"expected {self.num_inputs} maps, got {len(maps)}")
        if self.num_inputs == 1:
            maps = list(maps) * len(self.levels)
        # NCHW-contiguous out: a LayerNorm2d between the transposed convolutions leaves the
        # upsampled levels channels-last, and heads written for NCHW (mmseg's) then run their
        # stride-4 work on mixed layouts (measured: a UPerHead train step 1.3x slower under AVX2)
        return [self._run_level(level, x).contiguous() for level, x in zip(self.levels, maps)]


class Feature2PyramidNeck(_PyramidNeck):
    """Channel-keeping pyramid (mmsegmentation ``Feature2Pyramid`` semantics).

    Args:
        in_channels: channels of the input maps (the ViT width).
        scales: one scale per output level, e.g. (4, 2, 1, 0.5).
        num_inputs: 1 (every level from one map) or len(scales) (one map per level).
        norm_cfg: norm between the transposed convolutions of the 4x/8x levels.
    """

    def __init__(self, in_channels: int, scales: Sequence[float] = (4, 2, 1, 0.5),
                 num_inputs: int = 4, norm_cfg: Optional[dict] = DEFAULT_NORM_CFG):
        super().__init__(in_channels, scales, num_inputs)
        for scale in self.scales:
            steps = max(_scale_steps(scale), 0)
            self.levels.append(nn.Sequential(
                *rescale_layers(scale, [self.in_channels] * (steps + 1), norm_cfg)))
            self.out_channels.append(self.in_channels)


class SimpleFeaturePyramidNeck(_PyramidNeck):
    """Channel-reducing pyramid (detectron2 ViTDet ``SimpleFeaturePyramid`` semantics).

    Upsampling halves the channels at every step (4x: C -> C/2 -> C/4). With ``out_channels``
    (ViTDet), each level then goes through a 1x1 conv to ``out_channels`` + norm and a 3x3 conv +
    norm, convolutions without bias when a norm follows. With ``out_channels=None`` the levels
    keep the reduced channels (C/4, C/2, C, C for scales 4, 2, 1, 0.5) and there are no output
    convolutions: the cheapest pyramid, meant for heads that have their own lateral and output
    convolutions (UperNet, FPN).

    Args:
        in_channels: channels of the input maps (the ViT width).
        out_channels: channels of every output level, or None (see above).
        scales: one scale per output level, e.g. (4, 2, 1, 0.5).
        num_inputs: 1 (ViTDet: every level from the last block) or len(scales).
        norm_cfg: norm used inside the upsampling and after the output convolutions.
    """

    def __init__(self, in_channels: int, out_channels: Optional[int] = 256,
                 scales: Sequence[float] = (4, 2, 1, 0.5), num_inputs: int = 1,
                 norm_cfg: Optional[dict] = DEFAULT_NORM_CFG):
        super().__init__(in_channels, scales, num_inputs)
        use_bias = norm_cfg is None
        for scale in self.scales:
            steps = max(_scale_steps(scale), 0)
            channels = [self.in_channels // 2 ** i for i in range(steps + 1)]
            if channels[-1] < 1 or any(c * 2 ** i != self.in_channels for i, c in enumerate(channels)):
                raise ValueError(f"in_channels={self.in_channels} cannot be halved {steps} times "
                                 f"for scale {scale:g}")
            layers = rescale_layers(scale, channels, norm_cfg)
            if out_channels is not None:
                layers += [
                    nn.Conv2d(channels[-1], out_channels, kernel_size=1, bias=use_bias),
                    build_norm2d(norm_cfg, out_channels),
                    nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=use_bias),
                    build_norm2d(norm_cfg, out_channels),
                ]
            self.levels.append(nn.Sequential(*layers))
            self.out_channels.append(int(out_channels or channels[-1]))


class IdentityNeck(nn.Module):
    """No pyramid: every block map is an output level at the trunk's stride (scale 1).

    For heads that read the ViT's own maps (DINOv2's linear probe, DPT-style heads)."""

    def __init__(self, in_channels: int, num_inputs: int):
        super().__init__()
        self.in_channels = int(in_channels)
        self.num_inputs = num_inputs
        self.scales = (1.0,) * num_inputs
        self.out_channels = [self.in_channels] * num_inputs

    def forward(self, maps: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        if len(maps) != self.num_inputs:
            raise ValueError(f"expected {self.num_inputs} maps, got {len(maps)}")
        return list(maps)
