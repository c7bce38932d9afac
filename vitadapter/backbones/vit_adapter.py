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
:mod:`vitadapter.necks.adapter.geometry`), which for inputs divisible by 32 with patch 16 is
exactly the official computation.

``injectors=False`` is the DINOv3 segmentation adapter (Siméoni et al., 2025; the official
``dinov3/eval/segmentation/models/backbone/dinov3_adapter.py``, ``DINOv3_Adapter``, followed here):
the trunk is frozen and run once, without gradients, as it is (class and register tokens through
the blocks, nothing injected); the final norm is applied to the taken blocks (the official
``get_intermediate_layers(..., norm=True)``); their patch tokens feed one interaction each, made of
its extractors only (+2 on the last), and are added to the levels (bilinear, as above)::

    c1, c2, c3, c4 = spm(image); c = level_embed(c2, c3, c4)
    with torch.no_grad(): maps = norm(trunk(image)[trunk_layers])   # the trunk, unaltered
    for each taken block i: c = extractors_i(c, maps[i])
    levels = output(c1, c2, c3, c4, maps)

Differences from the official code, on purpose: the trunk runs in the training's precision (the
official one autocasts it to bf16 on CUDA; use mixed-precision training for the same); any input
size works (the official one needs sides divisible by 32); the class token, which the official
extractors carry along unused, is not returned; gradient checkpointing of the extractors is off
unless ``grad_checkpointing=True`` (official ``with_cp=True``) or ``'adapter'``.
"""
import math
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from timm.models import FeatureInfo

from ..geometry import grid_size
from ..necks.adapter import (AdapterOutput, InteractionBlock, LevelEmbedding, SpatialPriorModule,
                             interaction_geometry, maps_to_tokens, tokens_to_maps)
from ..trunk import TimmViTTrunk, evenly_spaced_blocks
from ..trunk.pos_embed import set_pos_embed_interpolation, supports_pos_embed_interpolation
from ..weights.interpolation import check_interpolation
from .vit_pyramid import LevelSpec

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
# injectors=False without an arch: the official DINOv3_Adapter's defaults (its stochastic depth
# acts on the extractors' ConvFFN only: the frozen trunk runs in eval mode)
DINOV3_DEFAULTS = dict(deform_num_heads=16, deform_ratio=0.5, drop_path_rate=0.3)
DEFAULT_ADAPTER_NORM_CFG = dict(type='BN')
PRIOR_STRIDES = (8, 16, 32)

RangesT = Sequence[Sequence[int]]


def slices_ending_at(ends: Sequence[int]) -> List[Tuple[int, int]]:
    """Consecutive block slices from block 0, each ending at one of ``ends``, as [first, last]
    pairs: [2, 5, 8, 11] -> [0, 2], [3, 5], [6, 8], [9, 11]."""
    return [(start, end) for start, end in zip([0] + [e + 1 for e in ends[:-1]], ends)]


def default_interactions(num_blocks: int, count: int = 4) -> List[Tuple[int, int]]:
    """``count`` equal slices of the blocks as [first, last] pairs: 12 -> [0, 2], [3, 5], ..."""
    return slices_ending_at(evenly_spaced_blocks(num_blocks, count))


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


class ViTAdapter(nn.Module):
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
            blocks with the patches; the injector and extractors see the patches only. None (the
            default): False, or True with ``injectors=False`` (where False is refused: that mode
            runs the trunk unaltered).
        injectors: True (ViT-Adapter). False: the DINOv3 segmentation adapter (see the module
            doc): no injectors, the frozen trunk run once without gradients, one interaction of
            extractors per taken block. Needs ``freeze_trunk=True``: the mode's point is that the
            trunk is neither altered nor trained (no trunk activation is stored), and a trunk that
            asks for gradients it would never get is refused rather than silently left untrained
            (to fine-tune the trunk, use the injectors). Without ``arch`` its defaults are the
            official ones (``DINOV3_DEFAULTS``: 16 heads, value ratio 0.5, drop path 0.3). A
            full ViTAdapter's state dict loads into it where keys overlap: the injectors' keys are
            unexpected, the trunk's final norm (pruned by the full adapter) is missing.
        trunk_layers: ``injectors=False`` only: the blocks whose outputs the extractors read, one
            per interaction, strictly increasing (official ``interaction_indexes``). Default:
            :func:`dinov3_trunk_layers` ([2, 5, 8, 11] for 12 blocks, [4, 11, 17, 23] for 24).
        pos_embed_interp: how position embeddings are interpolated to other grids: 'bicubic'
            (official ViT-Adapter: plain bicubic, needed for its checkpoints), 'timm' (antialiased
            bicubic), 'dinov2'; None: the trunk's rule (that of its checkpoint's source).
        norm_cfg: norms of the spatial prior module and the outputs (official SyncBN; default BN,
            which mmengine converts to SyncBN under DDP with ``sync_bn='torch'``; LN2d, GN ...).
        frozen_stages / freeze_trunk: freeze the ViT (the adapter always trains).
        grad_checkpointing: ``True``: recompute ViT blocks, injectors and extractors in the
            backward pass (official ``with_cp=True``); ``'adapter'``: the injectors and extractors
            only (most of the adapter's activation memory, a smaller share of its time: see the
            README's ViT-Adapter cost table); ``False``: nothing.
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
                 with_cls_token: Optional[bool] = None, pos_embed_interp: Optional[str] = 'bicubic',
                 norm_cfg: Optional[dict] = DEFAULT_ADAPTER_NORM_CFG, frozen_stages: int = -1,
                 freeze_trunk: bool = False, grad_checkpointing: Union[bool, str] = False,
                 strict_load: bool = True,
                 deform_implementation: str = 'auto', injectors: bool = True,
                 trunk_layers: Optional[Sequence[int]] = None, **model_kwargs):
        super().__init__()
        if arch is not None and arch not in ARCHS:
            raise ValueError(f"unknown ViTAdapter arch {arch!r}; choose one of {sorted(ARCHS)} or "
                             f"arch=None with a model_name")
        given = dict(model_name=model_name, deform_num_heads=deform_num_heads,
                     deform_ratio=deform_ratio, drop_path_rate=drop_path_rate)
        settings = {**(DEFAULTS if injectors else DINOV3_DEFAULTS), **(ARCHS[arch] if arch else {}),
                    **{k: v for k, v in given.items() if v is not None}}
        if settings.get('model_name') is None:
            raise ValueError("ViTAdapter needs a model_name (a timm ViT) or an arch "
                             f"({', '.join(sorted(ARCHS))})")
        if grad_checkpointing not in (True, False, 'adapter'):
            raise ValueError(f"ViTAdapter(grad_checkpointing={grad_checkpointing!r}): use True (ViT "
                             f"blocks, injectors and extractors), 'adapter' (injectors and "
                             f"extractors only) or False")
        self.arch = arch
        self.injectors = injectors
        if not injectors:
            check_extractor_only_args(freeze_trunk, interaction_indexes, with_cls_token)
        elif trunk_layers is not None:
            raise ValueError("trunk_layers chooses the blocks of injectors=False (the DINOv3 "
                             "adapter); with injectors, give interaction_indexes ([first, last] "
                             "block pairs)")
        if pos_embed_interp is not None:
            check_interpolation(pos_embed_interp)
        self.pos_embed_interp = pos_embed_interp
        self.trunk = TimmViTTrunk(
            settings['model_name'], out_indices=None, pretrained=pretrained, checkpoint=checkpoint,
            img_size=img_size, norm=not injectors, frozen_stages=frozen_stages, freeze_trunk=freeze_trunk,
            grad_checkpointing=grad_checkpointing is True, strict_load=strict_load,
            drop_path_rate=settings['drop_path_rate'], **model_kwargs)
        num_blocks = self.trunk.num_blocks
        if injectors:
            ranges = check_interactions(interaction_indexes, num_blocks) if interaction_indexes is not None \
                else default_interactions(num_blocks)
            # keep the blocks up to the last interaction (the trunk prunes what follows)
            self.trunk.model.prune_intermediate_layers([r[1] for r in ranges], prune_norm=True,
                                                       prune_head=True)
            if with_cls_token:
                self.trunk.check_token_hooks()
            else:
                self.trunk.drop_prefix_tokens()
            self.with_cls_token = bool(with_cls_token)
            taken = [r[1] for r in ranges]
        else:
            taken = check_trunk_layers(trunk_layers, num_blocks) if trunk_layers is not None \
                else dinov3_trunk_layers(num_blocks)
            ranges = slices_ending_at(taken)
            # the trunk runs its own forward pass on these blocks (with their final norm); the
            # blocks after the last one are pruned, the norm kept
            self.trunk.block_indices = taken
            self.trunk.model.prune_intermediate_layers(taken, prune_norm=False, prune_head=True)
            if pos_embed_interp is not None and supports_pos_embed_interpolation(self.trunk.model):
                set_pos_embed_interpolation(self.trunk.model, pos_embed_interp)
                self.trunk.pos_embed_interp = pos_embed_interp
            self.with_cls_token = True
        self.interaction_indexes = ranges
        self.trunk_layers = taken

        dim = self.trunk.embed_dim
        self.embed_dim = dim
        self.spm = SpatialPriorModule(dim, conv_inplane, norm_cfg)
        self.level_embed = LevelEmbedding(dim, len(PRIOR_STRIDES))
        self.interactions = nn.ModuleList(
            InteractionBlock(dim, settings['deform_num_heads'], n_points, settings['deform_ratio'],
                             injector_init_values, with_cffn, cffn_ratio,
                             drop_path=settings['drop_path_rate'],
                             extra_extractors=2 if (use_extra_extractor and i == len(ranges) - 1) else 0,
                             grad_checkpointing=bool(grad_checkpointing),
                             implementation=deform_implementation,
                             injector=injectors)
            for i in range(len(ranges)))
        if add_vit_feature and len(ranges) != 4:
            raise ValueError(f"add_vit_feature=True adds one interaction's ViT map to each of the 4 "
                             f"levels, so it needs 4 interactions; got {len(ranges)} "
                             f"(interaction_indexes={ranges}); set add_vit_feature=False")
        self.output = AdapterOutput(dim, add_vit_feature, norm_cfg)

        self.strides = AdapterOutput.strides
        level_blocks = list(taken) if add_vit_feature else [taken[-1]] * 4
        self.feature_info = FeatureInfo([
            dict(num_chs=dim, reduction=s, module=f'output.norms.{i}', block=b)
            for i, (s, b) in enumerate(zip(self.strides, level_blocks))
        ], out_indices=tuple(range(len(self.strides))))

    @property
    def load_report(self):
        """What loading ``checkpoint`` did (None when no checkpoint was given)."""
        return self.trunk.load_report

    def output_shape(self) -> Dict[str, LevelSpec]:
        """detectron2-style ``{'p2': LevelSpec(channels, stride=4), ...}``."""
        return {f'p{int(math.log2(s))}': LevelSpec(c, s)
                for c, s in zip(self.feature_info.channels(), self.feature_info.reduction())}

    def output_sizes(self, image_size: Sequence[int]) -> List[Tuple[int, int]]:
        """(h, w) of every level for an input of ``image_size`` = (H, W): ceil(H/s), ceil(W/s)."""
        return [grid_size(image_size, (s, s)) for s in self.strides]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Images (B, 3, H, W) -> 4 levels (B, C, ceil(H/s), ceil(W/s)), s = 4, 8, 16, 32."""
        if not self.injectors:
            return self._forward_extractors_only(x)
        c1, *priors = self.spm(x)
        prior_grids = [tuple(m.shape[-2:]) for m in priors]
        c = self.level_embed(priors)
        seq = self.trunk.embed(x, pos_embed_interp=self.pos_embed_interp)
        geometry = interaction_geometry(seq.grid, self.trunk.patch_size, prior_grids, PRIOR_STRIDES,
                                        x.device)
        tokens, vit_maps = seq.tokens, []
        for interaction, (first, last) in zip(self.interactions, self.interaction_indexes):
            blocks = partial(self.trunk.run_blocks, start=first, stop=last + 1,
                             block_kwargs=seq.block_kwargs)
            tokens, c = interaction(tokens, c, blocks, geometry, prior_grids, seq.num_prefix_tokens)
            vit_maps.append(tokens_to_maps(tokens[:, seq.num_prefix_tokens:], [seq.grid])[0])
        levels = self.output([c1, *tokens_to_maps(c, prior_grids)], vit_maps, self.trunk.patch_size)
        return tuple(levels)

    def trunk_features(self, x: torch.Tensor) -> List[torch.Tensor]:
        """``injectors=False``: the frozen trunk's outputs, run once without gradients: one map
        (B, C, ceil(H/p), ceil(W/p)) per taken block on the patch grid (patch p), final norm
        applied; exactly what the trunk computes alone (``TimmViTTrunk(..., norm=True)``)."""
        if self.injectors:
            raise RuntimeError("trunk_features() is the trunk pass of injectors=False; with "
                               "injectors the adapter changes the trunk's features block by block")
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.trunk.parameters()):
            raise RuntimeError("injectors=False runs the trunk without gradients, but some of its "
                               "parameters require them (unfrozen after construction?): keep "
                               "freeze_trunk=True, or use the injectors to fine-tune the trunk")
        with torch.no_grad():  # no autograd graph through the trunk: no trunk activation is stored
            return list(self.trunk(x).maps)

    def _forward_extractors_only(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        c1, *priors = self.spm(x)
        prior_grids = [tuple(m.shape[-2:]) for m in priors]
        c = self.level_embed(priors)
        vit_maps = self.trunk_features(x)
        geometry = interaction_geometry(tuple(vit_maps[0].shape[-2:]), self.trunk.patch_size,
                                        prior_grids, PRIOR_STRIDES, x.device)
        for interaction, vit_map in zip(self.interactions, vit_maps):
            c = interaction.extract(c, maps_to_tokens([vit_map]), geometry, prior_grids)
        levels = self.output([c1, *tokens_to_maps(c, prior_grids)], vit_maps, self.trunk.patch_size)
        return tuple(levels)


def check_extractor_only_args(freeze_trunk: bool, interaction_indexes: Optional[RangesT],
                              with_cls_token: Optional[bool]) -> None:
    """What ``injectors=False`` (the DINOv3 adapter) refuses, each with the fix."""
    if not freeze_trunk:
        raise ValueError("injectors=False (the DINOv3 adapter) runs the trunk once without gradients, "
                         "so the trunk cannot train: set freeze_trunk=True (or keep the injectors "
                         "to fine-tune the trunk)")
    if interaction_indexes is not None:
        raise ValueError("injectors=False takes the blocks to read as trunk_layers (e.g. [2, 5, 8, "
                         "11]), not interaction_indexes")
    if with_cls_token is False:
        raise ValueError("injectors=False runs the trunk unaltered, with its class and register "
                         "tokens; leave with_cls_token unset (or True)")
