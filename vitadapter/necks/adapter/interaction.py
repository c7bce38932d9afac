"""One interaction: inject the spatial prior into the ViT, run a slice of the ViT's blocks,
extract the result back into the spatial prior. Without an injector (``injector=False``, the DINOv3
segmentation adapter) an interaction is its extractors only, reading a block output computed
elsewhere (:meth:`InteractionBlock.extract`)."""
from typing import Callable, Sequence, Tuple

import torch
import torch.nn as nn
from timm.layers import trunc_normal_

from ...layers import DeformableAttention, he_normal_fan_out_, unit_norm_
from .extractor import Extractor
from .geometry import InteractionGeometry
from .injector import Injector

GridT = Tuple[int, int]


def official_init(module: nn.Module) -> None:
    """The official initialisation of the adapter's layers: truncated normal (std 0.02) for linear
    layers, He-normal over fan-out for convolutions, zero biases, unit norms; then Deformable DETR's
    own initialisation for the deformable attentions."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
            unit_norm_(m)
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            he_normal_fan_out_(m)
    for m in module.modules():
        if isinstance(m, DeformableAttention):
            m.reset_parameters()


class InteractionBlock(nn.Module):
    """Injector -> ViT blocks -> extractor (-> extra extractors, on the last interaction).

    Args:
        dim: the ViT width. num_heads / num_points / ratio: deformable attention settings.
        init_values: the injector's initial gamma. with_cffn / cffn_ratio / drop / drop_path: the
        extractors' ConvFFN. extra_extractors: extractors run after the first (official: 2 on the
        last interaction). grad_checkpointing: for the injector and extractors.
        injector: False builds no injector (``self.injector`` is None): the block is its
        extractors, run by :meth:`extract`; the other modules keep their names (``extractor``,
        ``extra_extractors.i``), so they load from a full block's state dict.

    forward(x, c, run_blocks, geometry, prior_grids, num_prefix_tokens):
        x (B, P + N, C): the ViT tokens (P prefix tokens first, which bypass the injector and the
        extractor); c (B, Nc, C): the prior tokens; run_blocks: tokens -> tokens, this interaction's
        slice of the ViT. Returns the new (x, c).
    """

    def __init__(self, dim: int, num_heads: int = 6, num_points: int = 4, ratio: float = 1.0,
                 init_values: float = 0.0, with_cffn: bool = True, cffn_ratio: float = 0.25,
                 drop: float = 0.0, drop_path: float = 0.0, extra_extractors: int = 0,
                 grad_checkpointing: bool = False, implementation: str = 'auto', injector: bool = True):
        super().__init__()
        self.injector = Injector(dim, num_heads, num_points, ratio, init_values,
                                 grad_checkpointing=grad_checkpointing,
                                 implementation=implementation) if injector else None
        extractor_args = dict(dim=dim, num_heads=num_heads, num_points=num_points, ratio=ratio,
                              with_cffn=with_cffn, cffn_ratio=cffn_ratio, drop=drop, drop_path=drop_path,
                              grad_checkpointing=grad_checkpointing, implementation=implementation)
        self.extractor = Extractor(**extractor_args)
        self.extra_extractors = nn.ModuleList(Extractor(**extractor_args) for _ in range(extra_extractors))
        official_init(self)

    def forward(self, x: torch.Tensor, c: torch.Tensor, run_blocks: Callable[[torch.Tensor], torch.Tensor],
                geometry: InteractionGeometry, prior_grids: Sequence[GridT],
                num_prefix_tokens: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.injector is None:
            raise RuntimeError("this interaction was built without an injector (injector=False): "
                               "run its extractors with extract(c, patches, ...)")
        prefix, patches = x[:, :num_prefix_tokens], x[:, num_prefix_tokens:]
        patches = self.injector(patches, c, geometry.inject)
        x = run_blocks(torch.cat([prefix, patches], dim=1) if num_prefix_tokens else patches)
        return x, self.extract(c, x[:, num_prefix_tokens:], geometry, prior_grids)

    def extract(self, c: torch.Tensor, patches: torch.Tensor, geometry: InteractionGeometry,
                prior_grids: Sequence[GridT]) -> torch.Tensor:
        """The extractor(s) alone: prior tokens c (B, Nc, C) read the patch tokens (B, N, C) of
        this interaction's block -> the new c (B, Nc, C)."""
        for extractor in [self.extractor, *self.extra_extractors]:
            c = extractor(c, patches, geometry.extract, prior_grids)
        return c
