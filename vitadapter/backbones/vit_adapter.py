"""ViTAdapter: any timm ViT with ViT-Adapter's spatial prior and interactions (Chen et al., ICLR 2023).

The forward pass, as in the paper and the official code::

    c1, c2, c3, c4 = spm(image)                    # conv stem, strides 4/8/16/32, ViT width
    c = level_embed(c2, c3, c4)                    # prior tokens
    x = trunk.embed(image)                         # patch (+ prefix) tokens
    for each interaction i (a slice of blocks):
        x = injector(x, c)                         # prior -> ViT, gated by gamma (0 at init)
        x = blocks[slice_i](x)
        c = extractor(c, x) (+ extra extractors)   # ViT -> prior, with the ConvFFN
    levels = output(c1, c2, c3, c4, ViT maps)      # c2 -> c1 merge, + resized ViT maps, norms

The trunk is :class:`~vitadapter.trunk.TimmViTTrunk`, run block slice by block slice through its
token hooks: any timm ViT (DeiT, AugReg, DINOv2 with registers, EVA-02, BEiT ...), any patch size,
freezing and grad checkpointing as in ViTPyramid. Any input size: level s is
``ceil(H/s) x ceil(W/s)``; reference points are placed in pixels (see
:mod:`vitadapter.layers.reference_points`), which for inputs divisible by 32 with patch 16 is
exactly the official computation.

DINOv3's extractor-only adapter on a frozen trunk is :class:`~vitadapter.DINOv3Adapter`; both
share the modules of :mod:`.adapter_base`.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch

from ..necks.adapter import interaction_geometry
from ..trunk import TimmViTTrunk, evenly_spaced_blocks
from .adapter_base import (DEFAULT_ADAPTER_NORM_CFG, PRIOR_STRIDES, AdapterBackbone, RangesT,
                           adapter_settings, slices_ending_at)

# The paper's settings (official configs of the ADE20K UperNet models): the ViT, the deformable
# attention heads and value width, stochastic depth. Interactions: 4 equal slices of the blocks.
ARCHS: Dict[str, dict] = {
    'tiny': dict(model_name='deit_tiny_patch16_224', deform_num_heads=6, deform_ratio=1.0,
                 drop_path_rate=0.1),
    'small': dict(model_name='deit_small_patch16_224', deform_num_heads=6, deform_ratio=1.0,
                  drop_path_rate=0.2),
    'base': dict(model_name='deit_base_patch16_224', deform_num_heads=12, deform_ratio=0.5,
                 drop_path_rate=0.3),
    'large': dict(model_name='vit_large_patch16_384', deform_num_heads=16, deform_ratio=0.5,
                  drop_path_rate=0.4),
}
DEFAULTS = dict(deform_num_heads=6, deform_ratio=1.0, drop_path_rate=0.0)


def default_interactions(num_blocks: int, count: int = 4) -> List[Tuple[int, int]]:
    """``count`` equal slices of the blocks as [first, last] pairs: 12 -> [0, 2], [3, 5], ..."""
    return slices_ending_at(evenly_spaced_blocks(num_blocks, count))


def check_interactions(indexes: RangesT, num_blocks: int) -> List[Tuple[int, int]]:
    """Official ``interaction_indexes`` ([first, last] block of each interaction, inclusive) ->
    checked pairs. They must start at block 0 and follow each other without gaps."""
    pairs = []
    for item in indexes:
        if len(item) != 2 or not all(isinstance(i, int) for i in item):
            raise ValueError(f"interaction_indexes must hold [first, last] block pairs, got {item!r} "
                             f"in {indexes!r}")
        pairs.append((int(item[0]), int(item[1])))
    if not pairs:
        raise ValueError("interaction_indexes is empty: give at least one [first, last] block pair")
    expected_start = 0
    for first, last in pairs:
        if first != expected_start or last < first:
            raise ValueError(f"interaction_indexes {indexes!r}: interactions must cover consecutive "
                             f"blocks from block 0 without gaps or overlaps (e.g. [[0, 2], [3, 5], "
                             f"[6, 8], [9, 11]]); [{first}, {last}] should start at {expected_start}")
        expected_start = last + 1
    if pairs[-1][1] >= num_blocks:
        raise ValueError(f"interaction_indexes {indexes!r} reach block {pairs[-1][1]} but the ViT has "
                         f"{num_blocks} blocks (0 to {num_blocks - 1})")
    return pairs




class ViTAdapter(AdapterBackbone):
    """ViT-Adapter on a timm ViT: 4 levels at strides 4/8/16/32, all with the ViT's width.

    Args:
        arch: 'tiny', 'small', 'base' or 'large': the paper's settings (see ``ARCHS``); explicit
            arguments override them. None: give ``model_name``.
        model_name: any timm ViT (``deit_small_patch16_224``, ``vit_small_patch14_reg4_dinov2``, ...).
        interaction_indexes: [first, last] block of each interaction (official format), consecutive
            from block 0. Default: 4 equal slices ([[0, 2], [3, 5], [6, 8], [9, 11]] for 12 blocks).
        pretrained / checkpoint / img_size / strict_load: as ViTPyramid. ``img_size`` is the size
            the position embeddings are stored for (official ``pretrain_size``: 224 for DeiT, 384
            for AugReg-B/L); inputs may have any size.
        drop_path_rate: stochastic depth of the ViT, and of the extractors' ConvFFN (official).
        conv_inplane: stem width of the spatial prior module (64).
        n_points / deform_num_heads / deform_ratio: deformable attention (4 points; 6 heads and
            full-width values for T/S, 12/16 heads and half-width values for B/L).
        injector_init_values: initial injector gamma (official ``init_values``: 0, a no-op at init).
        with_cffn / cffn_ratio: the extractors' ConvFFN (True, 0.25).
        add_vit_feature: add each interaction's ViT map to its level (True).
        use_extra_extractor: two more extractors on the last interaction (True).
        with_cls_token: False (official ViT-Adapter): class/register tokens are removed and the
            blocks see patch tokens only. True (BEiT-Adapter, DINOv2 recipe): they go through the
            blocks with the patches; the injector and extractors see the patches only.
        pos_embed_interp: how position embeddings are interpolated to other grids: 'bicubic'
            (official ViT-Adapter: plain bicubic, needed for its checkpoints), 'timm' (antialiased
            bicubic), 'dinov2'; None: the trunk's rule (that of its checkpoint's source).
        norm_cfg: norms of the spatial prior module and the outputs (official SyncBN; default BN,
            which mmengine converts to SyncBN under DDP with ``sync_bn='torch'``; LN2d, GN ...).
        frozen_stages / freeze_trunk: freeze the ViT (the adapter always trains).
        grad_checkpointing: ``True``: recompute ViT blocks, injectors and extractors in the
            backward pass (official ``with_cp=True``); ``'adapter'``: the injectors and extractors
            only (most of the adapter's activation memory, a smaller share of its time: see
            ``tools/README.md``'s cost table); ``False``: nothing.
        deform_implementation: 'auto' (mmcv's compiled kernel on CUDA if built; on the CPU one
            sparse product for all levels; else PyTorch's grid_sample), 'pytorch', 'sparse' or
            'compiled'.
        **model_kwargs: passed on to ``timm.create_model`` (e.g. ``init_values=1.0``: LayerScale,
            which the official ViT has).

    Input (B, 3, H, W) of any size. Output: a tuple of 4 maps (B, C, ceil(H/s), ceil(W/s)),
    s = 4, 8, 16, 32; ``feature_info`` describes them.
    """

    def __init__(self, arch: Optional[str] = None, model_name: Optional[str] = None,
                 interaction_indexes: Optional[RangesT] = None, pretrained: bool = False,
                 checkpoint: Optional[str] = None, img_size: Optional[Union[int, Tuple[int, int]]] = None,
                 drop_path_rate: Optional[float] = None, conv_inplane: int = 64, n_points: int = 4,
                 deform_num_heads: Optional[int] = None, deform_ratio: Optional[float] = None,
                 injector_init_values: float = 0.0, with_cffn: bool = True, cffn_ratio: float = 0.25,
                 add_vit_feature: bool = True, use_extra_extractor: bool = True,
                 with_cls_token: bool = False, pos_embed_interp: Optional[str] = 'bicubic',
                 norm_cfg: Optional[dict] = DEFAULT_ADAPTER_NORM_CFG, frozen_stages: int = -1,
                 freeze_trunk: bool = False, grad_checkpointing: Union[bool, str] = False,
                 strict_load: bool = True, deform_implementation: str = 'auto', **model_kwargs):
        super().__init__()
        for removed in ('injectors', 'trunk_layers'):
            if removed in model_kwargs:
                raise TypeError(f"ViTAdapter takes no {removed}=: DINOv3's extractor-only adapter "
                                f"(on a frozen trunk) is DINOv3Adapter(model_name=..., trunk_layers=[...])")
        settings = adapter_settings('ViTAdapter', ARCHS, DEFAULTS, arch, model_name=model_name,
                                    deform_num_heads=deform_num_heads, deform_ratio=deform_ratio,
                                    drop_path_rate=drop_path_rate)
        if grad_checkpointing not in (True, False, 'adapter'):
            raise ValueError(f"ViTAdapter(grad_checkpointing={grad_checkpointing!r}): use True (ViT "
                             f"blocks, injectors and extractors), 'adapter' (injectors and "
                             f"extractors only) or False")
        self.arch = arch
        self.trunk = TimmViTTrunk(
            settings['model_name'], out_indices=None, default_num_outputs=1, pretrained=pretrained,
            checkpoint=checkpoint, img_size=img_size, norm=False, frozen_stages=frozen_stages,
            freeze_trunk=freeze_trunk, grad_checkpointing=grad_checkpointing is True,
            strict_load=strict_load, pos_embed_interp=pos_embed_interp,
            drop_path_rate=settings['drop_path_rate'], **model_kwargs)
        num_blocks = self.trunk.num_blocks
        ranges = check_interactions(interaction_indexes, num_blocks) if interaction_indexes is not None \
            else default_interactions(num_blocks)
        self.trunk.select_blocks([ranges[-1][1]])  # the blocks after the last interaction go
        if with_cls_token:
            self.trunk.check_token_hooks()
        else:
            self.trunk.drop_prefix_tokens()
        self.with_cls_token = bool(with_cls_token)
        self.build_adapter(ranges, settings['deform_num_heads'], n_points, settings['deform_ratio'],
                           settings['drop_path_rate'], conv_inplane, with_cffn, cffn_ratio,
                           add_vit_feature, use_extra_extractor, norm_cfg, bool(grad_checkpointing),
                           deform_implementation, injectors=True,
                           injector_init_values=injector_init_values)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Images (B, 3, H, W) -> 4 levels (B, C, ceil(H/s), ceil(W/s)), s = 4, 8, 16, 32."""
        c1, c, prior_grids = self.prior(x)
        seq = self.trunk.embed(x)
        geometry = interaction_geometry(seq.grid, self.trunk.patch_size, prior_grids, PRIOR_STRIDES,
                                        x.device)
        vit_maps = []
        for interaction, (first, last) in zip(self.interactions, self.interaction_indexes):
            def run_blocks(tokens: torch.Tensor, first=first, last=last) -> torch.Tensor:
                return self.trunk.run_blocks(seq.with_tokens(tokens), first, last + 1).tokens
            tokens, c = interaction(seq.tokens, c, run_blocks, geometry, prior_grids, seq.num_prefix_tokens)
            seq = seq.with_tokens(tokens)
            vit_maps.append(seq.patch_map())
        return self.levels(c1, c, prior_grids, vit_maps)
