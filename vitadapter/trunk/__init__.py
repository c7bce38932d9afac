"""The timm ViT trunk: chosen blocks, prefix tokens, padding, grid mapping and the block API
(embed, extra tokens, blocks with an attention mask, final norm) the models build on."""
from .grid import GRID_MAPPINGS
from .indices import evenly_spaced_blocks, resolve_out_indices
from .models import check_model_name
from .prefix import PREFIX_MODES, ClassTokenReadout
from .timm_trunk import TimmViTTrunk, TrunkOutput
from .tokens import TokenSequence, additive_mask

__all__ = ['TimmViTTrunk', 'TrunkOutput', 'TokenSequence', 'additive_mask', 'ClassTokenReadout', 'check_model_name',
           'resolve_out_indices', 'evenly_spaced_blocks', 'GRID_MAPPINGS', 'PREFIX_MODES']
