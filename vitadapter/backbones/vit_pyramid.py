"""ViTPyramid: any timm ViT as a multi-scale (strides 4/8/16/32) dense-prediction backbone."""
from typing import Optional, Sequence, Tuple, Union

import torch

from ..layers import DEFAULT_NORM_CFG, crop_top_left
from ..necks import build_pyramid_neck, check_scales
from ..trunk import TimmViTTrunk
from .base import Backbone


class ViTPyramid(Backbone):
    """A timm Vision Transformer with a pyramid neck.

    Args:
        model_name: timm model name (``vit_base_patch16_224``, ``vit_small_patch14_reg4_dinov2``, ...).
        out_indices: blocks feeding the pyramid (timm convention: int N = last N blocks, negatives
            count from the end). One block per level, or a single block for all levels (ViTDet).
            Default: evenly spaced, e.g. (2, 5, 8, 11) for 12 blocks.
        pretrained: load timm's pretrained weights. checkpoint: local weights from any supported
            source (timm, official DINOv2, HF folder, mmseg/mmpretrain, MAE, BEiT), detected.
        img_size: the size position embeddings are stored for; any input size works.
        drop_path_rate: stochastic depth of the trunk.
        norm: apply the trunk's final norm to each chosen block (DINOv2 style) or not (ViTDet).
        prefix_tokens: class token readout into the maps: 'ignore', 'add' or 'project' (DPT).
        output_cls_token: also return each level's class token (mmseg convention: every output is
            ``[map, cls_token]`` with cls_token (B, embed_dim) of the block feeding the level).
        pyramid: 'simple' (default: channels halved per upsampling step, C/4, C/2, C, C; with
            ``out_channels``, ViTDet's 1x1 + 3x3 output convs), 'feature2pyramid' (mmseg's:
            C at every level) or 'none' (the block maps themselves, one level per block at
            ``stride``; ``scales`` is ignored; DINOv2 linear probing).
        scales: one per level, relative to ``stride`` (4, 2, 1, 0.5 -> strides 4, 8, 16, 32).
        out_channels: pyramid='simple' only: channels of every level (ViTDet uses 256).
        norm_cfg: norm layers of the neck (default LayerNorm2d: works on one CPU and under DDP).
        stride: reference stride of the token maps (16); other patch sizes are mapped onto it.
        grid_mapping: 'maps' (resample token maps) or 'input' (resize the input), for patch != stride.
        grad_checkpointing: recompute the trunk's blocks and the pyramid's upsampling levels in
            the backward pass (stores block inputs and level outputs only).
        frozen_stages / freeze_trunk / strict_load: see :class:`TimmViTTrunk`.
        **model_kwargs: passed on to ``timm.create_model``.

    Input (B, 3, H, W) of any size. Output: a tuple with one (B, C_i, ceil(H/s_i), ceil(W/s_i))
    map per level, strides s_i increasing; ``feature_info`` describes them.
    """

    def __init__(self, model_name: str, out_indices: Optional[Union[int, Sequence[int]]] = None,
                 pretrained: bool = False, checkpoint: Optional[str] = None,
                 img_size: Optional[Union[int, Tuple[int, int]]] = None, drop_path_rate: float = 0.0,
                 norm: bool = False, prefix_tokens: str = 'ignore', output_cls_token: bool = False,
                 pyramid: str = 'simple', scales: Sequence[float] = (4, 2, 1, 0.5),
                 out_channels: Optional[int] = None, norm_cfg: Optional[dict] = DEFAULT_NORM_CFG,
                 stride: int = 16, grid_mapping: str = 'maps', frozen_stages: int = -1,
                 freeze_trunk: bool = False, grad_checkpointing: bool = False,
                 strict_load: bool = True, **model_kwargs):
        super().__init__()
        if pyramid != 'none':
            scales = check_scales(scales)
            if any(stride / s < 1 for s in scales):
                raise ValueError(f"scales {scales} with stride {stride} give strides below 1")
        if stride < 1 or stride & (stride - 1):
            raise ValueError(f"stride must be a power of two (16 for 4/8/16/32 pyramids), got {stride}")
        self.trunk = TimmViTTrunk(
            model_name, out_indices=out_indices,
            default_num_outputs=len(scales) if pyramid != 'none' else 4,
            pretrained=pretrained, checkpoint=checkpoint,
            img_size=img_size, norm=norm, prefix_tokens=prefix_tokens, stride=stride,
            grid_mapping=grid_mapping, frozen_stages=frozen_stages, freeze_trunk=freeze_trunk,
            grad_checkpointing=grad_checkpointing, strict_load=strict_load,
            drop_path_rate=drop_path_rate, **model_kwargs)
        self.neck = build_pyramid_neck(pyramid, self.trunk.embed_dim, scales,
                                       num_inputs=len(self.trunk.block_indices),
                                       out_channels=out_channels, norm_cfg=norm_cfg)
        self.neck.grad_checkpointing = grad_checkpointing
        scales = self.neck.scales  # pyramid='none': one level of scale 1 per block
        self.output_cls_token = output_cls_token
        if output_cls_token and not self.trunk.has_class_token:
            raise ValueError(f"output_cls_token=True but {model_name!r} has no class token")
        blocks = self.trunk.block_indices
        level_blocks = list(blocks) if len(blocks) == len(scales) else [blocks[0]] * len(scales)
        self.describe_levels(self.neck.out_channels, [int(stride / s) for s in scales],
                             [f'neck.levels.{i}' for i in range(len(scales))], level_blocks)

    def forward(self, x: torch.Tensor) -> Tuple:
        """Images (B, 3, H, W) -> one map (B, C_i, ceil(H/s_i), ceil(W/s_i)) per level (or
        ``[map, class token (B, C)]`` pairs with ``output_cls_token``)."""
        trunk_out = self.trunk(x)
        levels = self.neck(trunk_out.maps)
        # The grid was padded to whole patches: keep exactly ceil(H/s) x ceil(W/s) (top-left aligned).
        levels = [crop_top_left(y, size) for y, size in zip(levels, self.output_sizes(x.shape[-2:]))]
        if self.output_cls_token:
            tokens = trunk_out.class_tokens
            if len(tokens) != len(levels):
                tokens = tokens * len(levels)
            return tuple([y, cls] for y, cls in zip(levels, tokens))
        return tuple(levels)
