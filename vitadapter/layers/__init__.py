"""Shared layers and ops, one idea per module (timm's ``timm/layers`` convention): what the trunk,
the necks, the heads and the models compute with. This room imports torch and timm only; the
necks and the heads import it, never each other.

* :mod:`.geometry`: grids of a stride, padding, cropping, resampling a map onto another stride's grid;
* :mod:`.tokens`: maps <-> token sequences;
* :mod:`.reference_points`: where deformable-attention queries sit on the levels they read;
* :mod:`.deform_attn` (+ :mod:`.sparse_sampling`): multi-scale deformable attention;
* :mod:`.residual`: residual branches accumulated by their GEMM;
* :mod:`.checkpoint`: gradient checkpointing where it is switched on;
* :mod:`.init`: shared weight initialisations;
* :mod:`.norm`: norm layers for NCHW maps from ``norm_cfg``;
* :mod:`.resized_conv` (+ :mod:`.measured_choice`): a 3x3 convolution of resized maps at their own
  resolution, and the measured choice between equivalent computations;
* :mod:`.scale_block` / :mod:`.mask_head`: EoMT's upscaling blocks and its query-to-mask head.
"""
from .checkpoint import checkpoint_if
from .deform_attn import (IMPLEMENTATIONS, DeformableAttention, ValueLevels, compiled_kernel_available,
                          deformable_sampling, pytorch_sampling)
from .geometry import ceil_div, crop_top_left, grid_size, is_static, pad_to_multiple, resample_to_grid
from .init import caffe2_xavier_, he_normal_fan_out_, unit_norm_
from .mask_head import MaskClassificationHead, query_attention_mask
from .measured_choice import MeasuredChoice, can_measure, is_traced, wall_seconds
from .norm import DEFAULT_NORM_CFG, build_norm2d, norm_types, register_norm
from .reference_points import cell_centres, normalized_cell_centres, reference_points, size_tensor, value_levels
from .residual import linear_residual
from .scale_block import ScaleBlock, num_scale_blocks, scale_blocks
from .resized_conv import (conv3x3_of_concat, conv3x3_of_resized, conv3x3_of_resized_concat,
                           resized_conv_saves_work, tap_resize_matrix)
from .tokens import maps_to_tokens, tokens_to_maps

__all__ = ['checkpoint_if', 'IMPLEMENTATIONS', 'DeformableAttention', 'ValueLevels',
           'compiled_kernel_available', 'deformable_sampling', 'pytorch_sampling', 'ceil_div',
           'crop_top_left', 'grid_size', 'is_static', 'pad_to_multiple', 'resample_to_grid',
           'caffe2_xavier_', 'he_normal_fan_out_', 'unit_norm_', 'MeasuredChoice', 'can_measure',
           'is_traced', 'wall_seconds', 'DEFAULT_NORM_CFG', 'build_norm2d', 'norm_types',
           'register_norm', 'cell_centres', 'normalized_cell_centres', 'reference_points',
           'size_tensor', 'value_levels', 'linear_residual', 'conv3x3_of_concat',
           'conv3x3_of_resized', 'conv3x3_of_resized_concat', 'resized_conv_saves_work',
           'tap_resize_matrix', 'maps_to_tokens', 'tokens_to_maps', 'MaskClassificationHead',
           'query_attention_mask', 'ScaleBlock', 'num_scale_blocks', 'scale_blocks']
