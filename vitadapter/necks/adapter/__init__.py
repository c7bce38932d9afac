"""ViT-Adapter's modules (Chen et al., "Vision Transformer Adapter for Dense Predictions", ICLR
2023), one idea per module; :class:`vitadapter.ViTAdapter` and :class:`vitadapter.DINOv3Adapter`
compose them with a timm ViT. Their deformable attention is the shared one of
:mod:`vitadapter.layers.deform_attn`.

* :mod:`.spatial_prior`: conv stem -> c1..c4 at strides 4/8/16/32;
* :mod:`.level_embed`: a learned vector per prior level;
* :mod:`.geometry`: reference points of the interactions' queries, pixel-exact for any input size;
* :mod:`.injector` / :mod:`.extractor` / :mod:`.conv_ffn`: prior -> ViT and ViT -> prior;
* :mod:`.interaction`: injector -> a slice of ViT blocks -> extractor(s);
* :mod:`.output`: c2 -> c1 merge, optional ViT features, per-level norms.
"""
from .conv_ffn import ConvFFN, MultiLevelDWConv
from .extractor import Extractor
from .geometry import InteractionGeometry, interaction_geometry
from .injector import Injector
from .interaction import InteractionBlock, official_init
from .level_embed import LevelEmbedding
from .output import AdapterOutput
from .spatial_prior import SpatialPriorModule

__all__ = ['AdapterOutput', 'ConvFFN', 'Extractor', 'Injector', 'InteractionBlock',
           'InteractionGeometry', 'LevelEmbedding', 'MultiLevelDWConv', 'SpatialPriorModule',
           'interaction_geometry', 'official_init']
