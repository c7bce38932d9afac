"""DINOv3Adapter: DINOv3's segmentation adapter (Siméoni et al., 2025) on any frozen timm ViT.

The official ``dinov3/eval/segmentation/models/backbone/dinov3_adapter.py`` (``DINOv3_Adapter``),
followed here: the trunk is frozen and run once, without gradients, as it is (class and register
tokens through the blocks, nothing injected); the final norm is applied to the taken blocks (the
official ``get_intermediate_layers(..., norm=True)``); their patch tokens feed one interaction
each, made of ViT-Adapter's extractors only (+2 on the last), and are added to the levels
(bilinear, as in ViT-Adapter)::

    c1, c2, c3, c4 = spm(image); c = level_embed(c2, c3, c4)
    with torch.no_grad(): maps = norm(trunk(image)[trunk_layers])   # the trunk, unaltered
    for each taken block i: c = extractors_i(c, maps[i])
    levels = output(c1, c2, c3, c4, maps)

It shares ViT-Adapter's modules (:mod:`.adapter_base`) and parameter names: a full
:class:`~vitadapter.ViTAdapter`'s state dict loads into it where keys overlap (the injectors' keys
are unexpected, the trunk's final norm, which the full adapter prunes, is missing).

Differences from the official code, on purpose: the trunk runs in the training's precision (the
official one autocasts it to bf16 on CUDA; use mixed-precision training for the same); any input
size works (the official one needs sides divisible by 32); the class token, which the official
extractors carry along unused, is not returned; gradient checkpointing of the extractors is off
unless ``grad_checkpointing=True`` (official ``with_cp=True``).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch

from ..layers import maps_to_tokens
from ..necks.adapter import interaction_geometry
from ..trunk import TimmViTTrunk, evenly_spaced_blocks
from .adapter_base import (DEFAULT_ADAPTER_NORM_CFG, PRIOR_STRIDES, AdapterBackbone, adapter_settings,
                           slices_ending_at)
from .vit_adapter import ARCHS

# The official DINOv3_Adapter's defaults (its stochastic depth acts on the extractors' ConvFFN
# only: the frozen trunk runs in eval mode)
DINOV3_DEFAULTS = dict(deform_num_heads=16, deform_ratio=0.5, drop_path_rate=0.3)


def dinov3_trunk_layers(num_blocks: int) -> List[int]:
    """The DINOv3 adapter's default blocks (official ``FOUR_EVEN_INTERVALS``): [4, 11, 17, 23] for
    24 blocks (ViT-L, as in the paper), else the last block of 4 equal groups ([2, 5, 8, 11] for
    12, [9, 19, 29, 39] for 40; the official ``i * (n // 4) - 1`` wherever 4 divides the depth)."""
    return [4, 11, 17, 23] if num_blocks == 24 else evenly_spaced_blocks(num_blocks, 4)


def check_trunk_layers(layers: Sequence[int], num_blocks: int) -> List[int]:
    """``trunk_layers`` (the blocks whose outputs the extractors read, DINOv3's
    ``interaction_indexes``) -> a checked list: block indices from 0, strictly increasing."""
    if isinstance(layers, (int, str)) or not isinstance(layers, Sequence) or len(layers) == 0:
        raise ValueError(f"trunk_layers must be a non-empty list of block indices such as "
                         f"[2, 5, 8, 11], got {layers!r}")
    for i in layers:
        if not isinstance(i, int) or isinstance(i, bool):
            raise ValueError(f"trunk_layers must hold block indices (ints), got {i!r} in {layers!r}")
        if not 0 <= i < num_blocks:
            raise ValueError(f"trunk_layers {list(layers)}: block {i} is out of range; the ViT has "
                             f"{num_blocks} blocks (0 to {num_blocks - 1})")
    if any(b <= a for a, b in zip(layers, layers[1:])):
        raise ValueError(f"trunk_layers {list(layers)} must be strictly increasing, from shallow to "
                         f"deep blocks (e.g. [2, 5, 8, 11])")
    return list(layers)


class DINOv3Adapter(AdapterBackbone):
    """DINOv3's extractor-only adapter on a frozen timm ViT: 4 levels at strides 4/8/16/32, all
    with the ViT's width.

    Args:
        model_name: any timm ViT (``vit_large_patch16_dinov3``, ``vit_small_patch14_reg4_dinov2``, ...).
        arch: 'tiny' .. 'large': ViT-Adapter's settings for that size (``ARCHS``); None (the
            default): the official DINOv3 ones (``DINOV3_DEFAULTS``: 16 heads, value ratio 0.5,
            drop path 0.3). Explicit arguments override both.
        trunk_layers: the blocks whose outputs the extractors read, one per interaction, strictly
            increasing (official ``interaction_indexes``). Default :func:`dinov3_trunk_layers`
            ([2, 5, 8, 11] for 12 blocks, [4, 11, 17, 23] for 24).
        freeze_trunk: must stay True: the trunk runs once without gradients, so it cannot train
            (no trunk activation is stored); to fine-tune the trunk, use :class:`ViTAdapter`.
        pretrained / checkpoint / img_size / strict_load / pos_embed_interp: as ViTPyramid
            (None: the checkpoint source's rule).
        drop_path_rate: stochastic depth of the extractors' ConvFFN (the frozen trunk runs in eval
            mode). conv_inplane, n_points, deform_num_heads, deform_ratio, with_cffn, cffn_ratio,
            add_vit_feature, use_extra_extractor, norm_cfg, deform_implementation: as ViTAdapter.
        grad_checkpointing: recompute the extractors in the backward pass (official ``with_cp``).
        **model_kwargs: passed on to ``timm.create_model``.

    Input (B, 3, H, W) of any size. Output: a tuple of 4 maps (B, C, ceil(H/s), ceil(W/s)),
    s = 4, 8, 16, 32; ``feature_info`` describes them.
    """

    def __init__(self, model_name: Optional[str] = None, arch: Optional[str] = None,
                 trunk_layers: Optional[Sequence[int]] = None, freeze_trunk: bool = True,
                 pretrained: bool = False, checkpoint: Optional[str] = None,
                 img_size: Optional[Union[int, Tuple[int, int]]] = None,
                 drop_path_rate: Optional[float] = None, conv_inplane: int = 64, n_points: int = 4,
                 deform_num_heads: Optional[int] = None, deform_ratio: Optional[float] = None,
                 with_cffn: bool = True, cffn_ratio: float = 0.25, add_vit_feature: bool = True,
                 use_extra_extractor: bool = True, pos_embed_interp: Optional[str] = None,
                 norm_cfg: Optional[dict] = DEFAULT_ADAPTER_NORM_CFG, grad_checkpointing: bool = False,
                 strict_load: bool = True, deform_implementation: str = 'auto', **model_kwargs):
        super().__init__()
        if not freeze_trunk:
            raise ValueError("DINOv3Adapter runs the trunk once without gradients, so the trunk "
                             "cannot train: keep freeze_trunk=True (or use ViTAdapter, whose "
                             "injectors fine-tune the trunk)")
        for other in ('interaction_indexes', 'with_cls_token', 'injectors', 'injector_init_values'):
            if other in model_kwargs:
                raise TypeError(f"DINOv3Adapter takes no {other}: it reads the blocks trunk_layers "
                                f"names (e.g. [2, 5, 8, 11]) from the unaltered trunk, class and "
                                f"register tokens included; {other} belongs to ViTAdapter")
        if grad_checkpointing not in (True, False):
            raise ValueError(f"DINOv3Adapter(grad_checkpointing={grad_checkpointing!r}): True "
                             f"(recompute the extractors) or False; the frozen trunk stores nothing")
        settings = adapter_settings('DINOv3Adapter', ARCHS, DINOV3_DEFAULTS, arch,
                                    model_name=model_name, deform_num_heads=deform_num_heads,
                                    deform_ratio=deform_ratio, drop_path_rate=drop_path_rate)
        self.arch = arch
        self.trunk = TimmViTTrunk(
            settings['model_name'], out_indices=None, default_num_outputs=1, pretrained=pretrained,
            checkpoint=checkpoint, img_size=img_size, norm=True, freeze_trunk=True,
            strict_load=strict_load, pos_embed_interp=pos_embed_interp,
            drop_path_rate=settings['drop_path_rate'], **model_kwargs)
        num_blocks = self.trunk.num_blocks
        taken = check_trunk_layers(trunk_layers, num_blocks) if trunk_layers is not None \
            else dinov3_trunk_layers(num_blocks)
        self.trunk.select_blocks(taken)  # the trunk's own forward on these blocks, final norm kept
        self.trunk_layers = taken
        self.build_adapter(slices_ending_at(taken), settings['deform_num_heads'], n_points,
                           settings['deform_ratio'], settings['drop_path_rate'], conv_inplane,
                           with_cffn, cffn_ratio, add_vit_feature, use_extra_extractor, norm_cfg,
                           grad_checkpointing, deform_implementation, injectors=False)

    def trunk_features(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The frozen trunk's outputs, run once without gradients: one map (B, C, ceil(H/p),
        ceil(W/p)) per taken block on the patch grid (patch p), final norm applied; exactly what
        the trunk computes alone (``TimmViTTrunk(..., norm=True)``)."""
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.trunk.parameters()):
            raise RuntimeError("DINOv3Adapter runs the trunk without gradients, but some of its "
                               "parameters require them (unfrozen after construction?): keep the "
                               "trunk frozen, or use ViTAdapter to fine-tune it")
        with torch.no_grad():  # no autograd graph through the trunk: no trunk activation is stored
            return list(self.trunk(x).maps)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Images (B, 3, H, W) -> 4 levels (B, C, ceil(H/s), ceil(W/s)), s = 4, 8, 16, 32."""
        c1, c, prior_grids = self.prior(x)
        vit_maps = self.trunk_features(x)
        geometry = interaction_geometry(tuple(vit_maps[0].shape[-2:]), self.trunk.patch_size,
                                        prior_grids, PRIOR_STRIDES, x.device)
        for interaction, vit_map in zip(self.interactions, vit_maps):
            c = interaction.extract(c, maps_to_tokens([vit_map]), geometry, prior_grids)
        return self.levels(c1, c, prior_grids, vit_maps)
