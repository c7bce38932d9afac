"""What ViT-Adapter (:class:`~vitadapter.ViTAdapter`) and DINOv3's extractor-only adapter
(:class:`~vitadapter.DINOv3Adapter`) share: their settings, the spatial prior, the interactions,
the output stage and the description of their four levels.

Both build, around a :class:`~vitadapter.trunk.TimmViTTrunk`::

    c1, c2, c3, c4 = spm(image)                    # conv stem, strides 4/8/16/32, ViT width
    c = level_embed(c2, c3, c4)                    # prior tokens
    ... interactions: the prior reads the ViT (extractors), and ViT-Adapter's ViT reads the prior
    levels = output(c1, c2, c3, c4, ViT maps)      # c2 -> c1 merge, + resized ViT maps, norms

and differ in how the trunk runs (block slice by block slice with injectors, or once, frozen).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..necks.adapter import AdapterOutput, InteractionBlock, LevelEmbedding, SpatialPriorModule
from ..layers import tokens_to_maps
from .base import Backbone

PRIOR_STRIDES = (8, 16, 32)
DEFAULT_ADAPTER_NORM_CFG = dict(type='BN')
RangesT = Sequence[Sequence[int]]


def slices_ending_at(ends: Sequence[int]) -> List[Tuple[int, int]]:
    """Consecutive block slices from block 0, each ending at one of ``ends``, as [first, last]
    pairs: [2, 5, 8, 11] -> [0, 2], [3, 5], [6, 8], [9, 11]."""
    return [(start, end) for start, end in zip([0] + [e + 1 for e in ends[:-1]], ends)]


def adapter_settings(kind: str, archs: dict, defaults: dict, arch: Optional[str], **given) -> dict:
    """The settings of an adapter: ``defaults``, then those of ``arch``, then the ones given
    (None = not given)."""
    if arch is not None and arch not in archs:
        raise ValueError(f"unknown {kind} arch {arch!r}; choose one of {sorted(archs)} or "
                         f"arch=None with a model_name")
    settings = {**defaults, **(archs[arch] if arch else {}),
                **{k: v for k, v in given.items() if v is not None}}
    if settings.get('model_name') is None:
        raise ValueError(f"{kind} needs a model_name (a timm ViT) or an arch "
                         f"({', '.join(sorted(archs))})")
    return settings


class AdapterBackbone(Backbone):
    """The adapter's modules around ``self.trunk``: ``spm``, ``level_embed``, ``interactions``
    (one per entry of ``ranges``; the last with ``extra_extractors``), ``output``; and its four
    levels, each of the trunk's width. Subclasses build the trunk first, then call
    :meth:`build_adapter`."""

    def build_adapter(self, ranges: Sequence[Tuple[int, int]], deform_num_heads: int, n_points: int,
                      deform_ratio: float, drop_path_rate: float, conv_inplane: int,
                      with_cffn: bool, cffn_ratio: float, add_vit_feature: bool,
                      use_extra_extractor: bool, norm_cfg: Optional[dict],
                      grad_checkpointing: bool, deform_implementation: str, injectors: bool,
                      injector_init_values: float = 0.0) -> None:
        if add_vit_feature and len(ranges) != 4:
            raise ValueError(f"add_vit_feature=True adds one interaction's ViT map to each of the 4 "
                             f"levels, so it needs 4 interactions; got {len(ranges)} "
                             f"(blocks {list(ranges)}); set add_vit_feature=False")
        dim = self.trunk.embed_dim
        self.embed_dim = dim
        self.interaction_indexes = [tuple(r) for r in ranges]
        self.spm = SpatialPriorModule(dim, conv_inplane, norm_cfg)
        self.level_embed = LevelEmbedding(dim, len(PRIOR_STRIDES))
        self.interactions = nn.ModuleList(
            InteractionBlock(dim, deform_num_heads, n_points, deform_ratio, injector_init_values,
                             with_cffn, cffn_ratio, drop_path=drop_path_rate,
                             extra_extractors=2 if (use_extra_extractor and i == len(ranges) - 1) else 0,
                             grad_checkpointing=grad_checkpointing,
                             implementation=deform_implementation, injector=injectors)
            for i in range(len(ranges)))
        self.output = AdapterOutput(dim, add_vit_feature, norm_cfg)
        taken = [r[1] for r in ranges]
        level_blocks = list(taken) if add_vit_feature else [taken[-1]] * 4
        self.describe_levels([dim] * 4, AdapterOutput.strides,
                             [f'output.norms.{i}' for i in range(4)], level_blocks)

    def prior(self, x: torch.Tensor):
        """The spatial prior of images (B, 3, H, W): c1 (B, C, H/4, W/4), the prior tokens
        (B, Nc, C) of c2, c3, c4 with their level embeddings, and the (h, w) of c2, c3, c4."""
        c1, *priors = self.spm(x)
        return c1, self.level_embed(priors), [tuple(m.shape[-2:]) for m in priors]

    def levels(self, c1: torch.Tensor, c: torch.Tensor, prior_grids, vit_maps) -> Tuple[torch.Tensor, ...]:
        """The four output levels from c1, the prior tokens and the ViT maps of the interactions."""
        return tuple(self.output([c1, *tokens_to_maps(c, prior_grids)], vit_maps, self.trunk.patch_size))
