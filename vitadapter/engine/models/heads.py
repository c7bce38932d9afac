"""Decode heads vitadapter adds to mmseg's ``MODELS`` registry.

``LinearProbeHead``: DINOv2's linear segmentation probe. The chosen levels' maps (e.g. the last
four blocks of a frozen ViT, ``ViTPyramid(pyramid='none', out_indices=4, norm=True)``) are resized
to the first one's size and concatenated, optionally with each level's class token broadcast over
the map (``concat_cls_token=True``, needs ``output_cls_token=True`` on the backbone), then batch
norm and a 1x1 convolution to the classes.

``FastUPerHead``: mmseg's ``UPerHead`` with the same parameters (checkpoints load either way)
and the same outputs up to float rounding, faster (the convolution itself is plain torch:
:mod:`vitadapter.layers.resized_conv`). UPerHead resizes its four FPN levels to
stride 4, concatenates them (4 x 512 channels) and runs a 3x3 convolution there: three quarters
of that convolution multiply interpolated pixels. FastUPerHead splits the convolution by level
and computes each coarse level's share at the level's own resolution (``conv3x3_of_resized``);
the same for the pooling pyramid's convolution over its upsampled 1/2/3/6 pooled maps.

Which of the two formulations is faster depends on the machine: the low-resolution path is
matrix products (MKL's GEMMs for the 1x1 convolution at one thread and the per-axis resizes),
UPerHead's is one big 3x3 convolution (oneDNN), and their speeds move apart differently with the
instruction set, the CPU vendor and the sizes. ``fast_path='auto'`` (the default) times both on
the real tensors at the first call of each fusion convolution per input key (channels, scales,
memory format, output size class, dtype, device, grad mode, train/eval, autocast, threads) and
keeps the faster (``MeasuredChoice``), so the head is never slower than UPerHead's computation by
more than the timing's noise, at the price of a slower first step per size class and choices that
may differ between runs (float rounding only). Nothing is timed when a run asks for
reproducibility (``torch.use_deterministic_algorithms``, mmengine's
``randomness=dict(deterministic=True)``), in a process group of several (each process would
choose on its own; a warning says so), or while compiling, tracing or exporting: the
low-resolution formulation runs there. Under FLOP counting nothing is timed either, but a choice
already made for the key is kept (the count is of what runs). ``True`` always takes the
low-resolution formulation (where it saves multiply-adds), ``False`` always UPerHead's.
"""
import math
import warnings
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmseg.models.decode_heads import UPerHead
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS

from ...layers import MeasuredChoice, can_measure, conv3x3_of_concat, conv3x3_of_resized_concat, is_traced


@MODELS.register_module()
class LinearProbeHead(BaseDecodeHead):
    """Args: in_channels (list, one per selected level), in_index (list), concat_cls_token,
    dropout_before_norm, and BaseDecodeHead's (num_classes, norm_cfg for the batch norm,
    dropout_ratio, losses).

    dropout_before_norm: False (mmseg's order, DINOv2's probe): batch norm, dropout, 1x1 conv.
    True (DINOv3's ``LinearHead``): dropout, batch norm, 1x1 conv."""

    def __init__(self, in_channels: Sequence[int], in_index: Sequence[int],
                 concat_cls_token: bool = False, dropout_before_norm: bool = False,
                 norm_cfg=dict(type='BN'), **kwargs):
        if not isinstance(in_channels, (list, tuple)) or not isinstance(in_index, (list, tuple)):
            raise ValueError("LinearProbeHead takes lists: in_channels=[C, ...], in_index=[i, ...]")
        width = sum(in_channels) * (2 if concat_cls_token else 1)
        kwargs.pop('channels', None)
        super().__init__(in_channels=list(in_channels), in_index=list(in_index), channels=width,
                         input_transform='multiple_select', norm_cfg=norm_cfg, **kwargs)
        self.concat_cls_token = concat_cls_token
        self.dropout_before_norm = dropout_before_norm
        self.bn = build_norm_layer(norm_cfg, width)[1]

    def _features(self, inputs: List) -> torch.Tensor:
        selected = [inputs[i] for i in self.in_index]
        pairs = [isinstance(x, (list, tuple)) for x in selected]
        if self.concat_cls_token and not all(pairs):
            raise ValueError("concat_cls_token=True needs [map, cls_token] inputs: set "
                             "output_cls_token=True on the backbone")
        maps = [x[0] if p else x for x, p in zip(selected, pairs)]
        size = maps[0].shape[2:]
        feats = [resize(m, size=size, mode='bilinear', align_corners=self.align_corners)
                 if m.shape[2:] != size else m for m in maps]
        if self.concat_cls_token:
            for (_, cls), m in zip(selected, maps):
                if cls.shape[1] != m.shape[1]:
                    raise ValueError(f"class token width {cls.shape[1]} != map channels "
                                     f"{m.shape[1]}: use pyramid='none' for a linear probe")
                feats.append(cls[:, :, None, None].expand(-1, -1, *size))
        return torch.cat(feats, dim=1)

    def forward(self, inputs: List) -> torch.Tensor:
        """inputs: the backbone's levels -> (B, num_classes, h, w) logits at the first level's size."""
        feats = self._features(inputs)
        if not self.dropout_before_norm:
            return self.cls_seg(self.bn(feats))
        if self.dropout is not None:
            feats = self.dropout(feats)
        return self.conv_seg(self.bn(feats))


def _is_plain_conv3x3(module) -> bool:
    """An mmcv ConvModule running a plain 3x3 convolution (stride 1, padding 1, zero padding),
    then its norm, then its activation."""
    conv = module.conv
    return (type(conv) is nn.Conv2d and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding_mode == 'zeros' and not module.with_explicit_padding
            and tuple(module.order) == ('conv', 'norm', 'act'))


def _conv_module_of_concat(module, maps: List[torch.Tensor], size, align_corners: bool,
                           low_res: bool = True) -> torch.Tensor:
    """``module(cat([resize(m, size) for m in maps], 1))`` for a plain 3x3 ConvModule, the
    convolution computed at the maps' own resolutions (``low_res``) or as UPerHead does."""
    conv = conv3x3_of_resized_concat if low_res else conv3x3_of_concat
    x = conv(maps, module.conv.weight, module.conv.bias, size, align_corners)
    if module.with_norm:
        x = module.norm(x)
    if module.with_activation:
        x = module.activate(x)
    return x


def _size_class(pixels: int) -> int:
    """Half-octaves: sizes within about 1.4x of each other share a class."""
    return round(2 * math.log2(max(int(pixels), 1)))


def _several_processes() -> bool:
    """Whether this process is one of several in an initialised process group."""
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@MODELS.register_module()
class FastUPerHead(UPerHead):
    """UPerHead (same arguments, parameters and state_dict keys) whose two concatenating 3x3
    convolutions (the pooling pyramid's ``bottleneck`` and the FPN's ``fpn_bottleneck``) run each
    resized input's share at that input's own resolution; outputs equal UPerHead's up to float
    rounding (tested: forward and gradients).

    Args:
        fast_path: ``'auto'`` (default): per fusion convolution, time the low-resolution and
            UPerHead's formulation once per input key (see ``_input_key``) on the real tensors
            (forward, plus backward when gradients are needed) and keep the faster; the
            low-resolution one where nothing can be timed (deterministic algorithms, several
            processes, compiling, tracing, export, FLOP counting). ``True``: always the
            low-resolution formulation (where it saves multiply-adds); ``False``: always UPerHead's.
        **kwargs: UPerHead's arguments.
    """

    def __init__(self, fast_path: Union[str, bool] = 'auto', **kwargs):
        if fast_path not in ('auto', True, False):
            raise ValueError(f"FastUPerHead(fast_path={fast_path!r}): use 'auto' (time both "
                             f"formulations once and keep the faster), True or False")
        super().__init__(**kwargs)
        if not (_is_plain_conv3x3(self.bottleneck) and _is_plain_conv3x3(self.fpn_bottleneck)):
            raise ValueError("FastUPerHead needs plain 3x3 fusion convolutions (default conv_cfg, "
                             "order conv-norm-act); use mmseg's UPerHead for other settings")
        self.fast_path = fast_path
        self._warned_distributed = False
        self.path_choice = MeasuredChoice()  # (fusion conv, input key) -> 'low_res' / 'uperhead'

    def _input_key(self, name: str, maps: List[torch.Tensor], size) -> Tuple:
        """What the measured choice depends on: each map's channels, size class and memory
        format, the output's size class (batch x pixels), dtypes, device, grad mode, train/eval,
        autocast and threads. A size class is a half-octave of pixels: inputs of other sizes or
        aspect ratios in the same classes reuse the choice instead of being timed again (e.g.
        whole-image inference on images of varied sizes)."""
        weight = getattr(self, name).conv.weight
        device = maps[0].device
        autocast = torch.is_autocast_enabled(device.type)
        return (name, tuple((m.shape[1], _size_class(m.shape[2] * m.shape[3]),
                             m.is_contiguous(memory_format=torch.channels_last)) for m in maps),
                _size_class(maps[0].shape[0] * size[0] * size[1]), maps[0].dtype, weight.dtype,
                str(device), self._needs_grad(maps), self.training,
                autocast and torch.get_autocast_dtype(device.type), torch.get_num_threads())

    def _needs_grad(self, maps: List[torch.Tensor]) -> bool:
        return torch.is_grad_enabled() and (any(m.requires_grad for m in maps) or any(
            p.requires_grad for p in self.parameters()))

    def _low_res(self, name: str, maps: List[torch.Tensor], size) -> bool:
        """Whether the fusion convolution ``name`` runs at the maps' own resolutions now."""
        if self.fast_path != 'auto':
            return self.fast_path
        if is_traced():  # compiled, traced, exported: sizes may be symbolic, no state changes
            return True
        if torch.are_deterministic_algorithms_enabled():  # reproducible runs: no timing
            return True
        if _several_processes():
            if not self._warned_distributed:
                warnings.warn("FastUPerHead(fast_path='auto') in a run of several processes: each "
                              "would time on its own and could choose differently; using the "
                              "low-resolution formulation (fast_path=True) in every process. Set "
                              "fast_path=True or False in the config to silence this.")
                self._warned_distributed = True
            return True
        module = getattr(self, name)
        key = self._input_key(name, maps, size)
        if key in self.path_choice.choices:  # also under FLOP counting: count what runs
            return self.path_choice.choices[key] == 'low_res'
        if not can_measure():  # under a dispatch mode (FLOP counting, fake tensors): no timing
            return True
        candidates = {'low_res': self._timed_call(module, maps, size, True),
                      'uperhead': self._timed_call(module, maps, size, False)}
        choice = self.path_choice.pick(key, candidates, maps[0].device)
        return choice != 'uperhead'

    def _timed_call(self, module, maps: List[torch.Tensor], size, low_res: bool):
        """One forward (and backward, when the step needs gradients) of the fusion convolution
        alone, on detached copies of the inputs and weights: the real step's graph and
        gradients are untouched."""
        needs_grad = self._needs_grad(maps)
        conv = conv3x3_of_resized_concat if low_res else conv3x3_of_concat

        def call():
            with torch.no_grad() if not needs_grad else torch.enable_grad():
                leaves = [m.detach().requires_grad_(needs_grad) for m in maps]
                weight = module.conv.weight.detach().requires_grad_(needs_grad)
                bias = module.conv.bias
                bias = None if bias is None else bias.detach().requires_grad_(needs_grad)
                out = conv(leaves, weight, bias, size, self.align_corners)
                if needs_grad:
                    out.backward(torch.ones_like(out))
        return call

    def psp_forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """The pooling pyramid on the coarsest level (B, C, h, w) -> (B, channels, h, w)."""
        x = inputs[-1]
        pooled = [branch(x) for branch in self.psp_modules]  # (B, channels, s, s) per pool scale
        maps = [x] + pooled
        return _conv_module_of_concat(self.bottleneck, maps, x.shape[2:], self.align_corners,
                                      self._low_res('bottleneck', maps, x.shape[2:]))

    def _forward_feature(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """inputs: the backbone's levels -> (B, channels, H, W) at the finest selected level."""
        # NCHW: a channels-last level (ViTPyramid's stride-4 map comes out of timm's LayerNorm2d
        # as a permuted view) would run the stride-4 chain on channels-last kernels and add its
        # share to the NCHW low-resolution shares across layouts; measured (head train step,
        # batch 2, 512x512, 1 thread): 18.5 s instead of 13.9 s with AVX2 code paths, 9.0 vs 9.3 s
        # with AVX-512. The copy is of the input map only (6 MiB there).
        inputs = [x.contiguous() for x in self._transform_inputs(inputs)]
        laterals = [conv(inputs[i]) for i, conv in enumerate(self.lateral_convs)]
        laterals.append(self.psp_forward(inputs))
        for i in range(len(laterals) - 1, 0, -1):  # top-down path
            laterals[i - 1] = laterals[i - 1] + resize(
                laterals[i], size=laterals[i - 1].shape[2:], mode='bilinear',
                align_corners=self.align_corners)
        fpn_outs = [conv(lateral) for conv, lateral in zip(self.fpn_convs, laterals[:-1])]
        fpn_outs.append(laterals[-1])
        size = fpn_outs[0].shape[2:]
        return _conv_module_of_concat(self.fpn_bottleneck, fpn_outs, size, self.align_corners,
                                      self._low_res('fpn_bottleneck', fpn_outs, size))
