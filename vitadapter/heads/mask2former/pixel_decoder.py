"""Mask2Former's pixel decoder: multi-scale deformable-attention encoder over the coarsest levels,
an FPN step for the finer ones, and the mask features (mmdet's ``MSDeformAttnPixelDecoder``,
same parameter names, on vitadapter's own deformable attention).

The ``num_levels`` coarsest input maps (strides 8/16/32 of a 4-level pyramid) are projected to
``feat_channels`` (1x1 conv + GroupNorm), given a sine positional encoding plus a learned level
embedding, flattened into one token sequence and refined by ``num_layers`` post-norm encoder layers
(deformable self-attention over all levels + FFN, Deformable DETR's encoder). Every finer input
(stride 4) gets a lateral 1x1 conv + GN, plus the upsampled previous output, then a 3x3 conv + GN +
ReLU; a 1x1 conv of the finest map gives the mask features.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...layers import (DeformableAttention, ValueLevels, caffe2_xavier_, normalized_cell_centres,
                       tokens_to_maps, value_levels)
from .blocks import ConvGN, FeedForward
from .positional import sine_positional_encoding


class DeformableEncoderLayer(nn.Module):
    """Post-norm encoder layer: x = LN(x + MSDeformAttn(x + pos, x)); x = LN(x + FFN(x)).

    forward: x (B, N, C) tokens of all levels, pos (B or 1, N, C), levels -> (B, N, C).
    """

    def __init__(self, dim: int, num_heads: int, num_levels: int, num_points: int, hidden: int,
                 implementation: str = 'auto'):
        super().__init__()
        self.self_attn = DeformableAttention(dim, num_heads, num_levels, num_points,
                                             implementation=implementation)
        self.ffn = FeedForward(dim, hidden)
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(2)])

    def forward(self, x: torch.Tensor, pos: torch.Tensor, levels: ValueLevels) -> torch.Tensor:
        x = self.norms[0](x + self.self_attn(x + pos, x, levels))
        return self.norms[1](self.ffn(x))


class DeformableEncoder(nn.Module):
    """``num_layers`` :class:`DeformableEncoderLayer` (key prefix ``layers.i``)."""

    def __init__(self, num_layers: int, **layer_kwargs):
        super().__init__()
        self.layers = nn.ModuleList([DeformableEncoderLayer(**layer_kwargs) for _ in range(num_layers)])

    def forward(self, x, pos, levels):
        for layer in self.layers:
            x = layer(x, pos, levels)
        return x


class MSDeformAttnPixelDecoder(nn.Module):
    """Args:
        in_channels: channels of the input maps, finest first (e.g. 4 maps at strides 4..32).
        feat_channels: width of the encoder and of the FPN maps.
        out_channels: channels of the mask features.
        num_levels: how many of the coarsest inputs the deformable encoder reads (3).
        num_layers, num_heads, num_points, feedforward_channels: the encoder (6, 8, 4, 1024).
        num_groups: GroupNorm groups (32).
        implementation: deformable sampling, see :class:`DeformableAttention` ('auto').

    forward: features [(B, C_i, H_i, W_i)] finest first -> (mask_features (B, out_channels, H_0, W_0),
    multi-scale maps [(B, feat_channels, h, w)] of the ``num_levels`` encoder levels, coarsest first).
    """

    def __init__(self, in_channels: Sequence[int], feat_channels: int = 256, out_channels: int = 256,
                 num_levels: int = 3, num_layers: int = 6, num_heads: int = 8, num_points: int = 4,
                 feedforward_channels: int = 1024, num_groups: int = 32, implementation: str = 'auto'):
        super().__init__()
        in_channels = list(in_channels)
        if not 1 <= num_levels <= len(in_channels):
            raise ValueError(f"pixel decoder: num_levels={num_levels} encoder levels need at least that "
                             f"many inputs, got in_channels={in_channels}")
        self.num_inputs, self.num_levels = len(in_channels), num_levels
        self.feat_channels = feat_channels
        # coarsest first; input_convs[i] reads input num_inputs - 1 - i
        self.input_convs = nn.ModuleList(
            ConvGN(in_channels[self.num_inputs - 1 - i], feat_channels, 1, num_groups, bias=True)
            for i in range(num_levels))
        self.encoder = DeformableEncoder(num_layers, dim=feat_channels, num_heads=num_heads,
                                         num_levels=num_levels, num_points=num_points,
                                         hidden=feedforward_channels, implementation=implementation)
        self.level_encoding = nn.Embedding(num_levels, feat_channels)
        # finer inputs, coarse to fine: lateral_convs[k] reads input num_inputs - num_levels - 1 - k
        # (mmdet's construction order; its forward indexes by input, the same when there is one)
        fine = list(range(self.num_inputs - num_levels - 1, -1, -1))
        self.lateral_convs = nn.ModuleList(ConvGN(in_channels[i], feat_channels, 1, num_groups)
                                           for i in fine)
        self.output_convs = nn.ModuleList(ConvGN(feat_channels, feat_channels, 3, num_groups, relu=True)
                                          for _ in fine)
        self.mask_feature = nn.Conv2d(feat_channels, out_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """mmdet's ``init_weights``: xavier-uniform input projections, c2-xavier FPN and mask convs,
        N(0, 1) level encoding, xavier-normal encoder matrices then Deformable DETR's attention init."""
        for conv in self.input_convs:
            nn.init.xavier_uniform_(conv.conv.weight)
            nn.init.zeros_(conv.conv.bias)
        for conv in [*self.lateral_convs, *self.output_convs]:
            caffe2_xavier_(conv.conv)
        caffe2_xavier_(self.mask_feature)
        nn.init.normal_(self.level_encoding.weight)
        for p in self.encoder.parameters():
            if p.dim() > 1:
                nn.init.xavier_normal_(p)
        for layer in self.encoder.layers:
            layer.self_attn.reset_parameters()

    def forward(self, features: List[torch.Tensor]) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        if len(features) != self.num_inputs:
            raise ValueError(f"pixel decoder built for {self.num_inputs} maps, got {len(features)}")
        tokens, pos, shapes = [], [], []
        for i, conv in enumerate(self.input_convs):
            x = conv(features[self.num_inputs - 1 - i])
            h, w = x.shape[-2:]
            level_pos = sine_positional_encoding(h, w, self.feat_channels // 2, device=x.device).to(x.dtype)
            level_pos = self.level_encoding.weight[i].view(1, -1, 1, 1) + level_pos
            tokens.append(x.flatten(2).transpose(1, 2))
            pos.append(level_pos.flatten(2).transpose(1, 2))
            shapes.append((h, w))
        reference = normalized_cell_centres(shapes, features[0].device)
        reference = reference[None, :, None, :].expand(1, -1, self.num_levels, 2)
        memory = self.encoder(torch.cat(tokens, 1), torch.cat(pos, 1),
                              value_levels(shapes, reference, features[0].device))
        outs = tokens_to_maps(memory, shapes)
        fine = range(self.num_inputs - self.num_levels - 1, -1, -1)
        for k, i in enumerate(fine):
            lateral = self.lateral_convs[k](features[i])
            y = lateral + F.interpolate(outs[-1], size=lateral.shape[-2:], mode='bilinear',
                                        align_corners=False)
            outs.append(self.output_convs[k](y))
        return self.mask_feature(outs[-1]), outs[:self.num_levels]
