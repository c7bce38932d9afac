"""ViT-Adapter's modules (Chen et al., "Vision Transformer Adapter for Dense Predictions", ICLR
2023), one idea per module; :class:`vitadapter.ViTAdapter` composes them with a timm ViT.

* :mod:`.spatial_prior`: conv stem -> c1..c4 at strides 4/8/16/32;
* :mod:`.level_embed`: a learned vector per prior level;
* :mod:`.deform_attn`: multi-scale deformable attention (mmcv's kernels, official parameter names);
* :mod:`.geometry`: reference points of the queries, pixel-exact for any input size;
* :mod:`.injector` / :mod:`.extractor` / :mod:`.conv_ffn`: prior -> ViT and ViT -> prior;
* :mod:`.interaction`: injector -> a slice of ViT blocks -> extractor(s);
* :mod:`.output`: c2 -> c1 merge, optional ViT features, per-level norms.
"""
from .conv_ffn import ConvFFN, MultiLevelDWConv
from .deform_attn import DeformableAttention, ValueLevels, compiled_kernel_available, deformable_sampling
from .extractor import Extractor
from .geometry import InteractionGeometry, interaction_geometry, reference_points
from .injector import Injector
from .interaction import InteractionBlock, official_init
from .level_embed import LevelEmbedding
from .output import AdapterOutput
from .spatial_prior import SpatialPriorModule
from .tokens import maps_to_tokens, tokens_to_maps

__all__ = ['AdapterOutput', 'ConvFFN', 'DeformableAttention', 'Extractor', 'Injector',
           'InteractionBlock', 'InteractionGeometry', 'LevelEmbedding', 'MultiLevelDWConv',
           'SpatialPriorModule', 'ValueLevels', 'compiled_kernel_available', 'deformable_sampling',
           'interaction_geometry', 'maps_to_tokens', 'official_init', 'reference_points',
           'tokens_to_maps']
