"""The timm ViT trunk: chosen blocks, prefix tokens, padding and grid mapping."""
from .grid import GRID_MAPPINGS
from .models import check_model_name
from .prefix import PREFIX_MODES, ClassTokenReadout
from .timm_trunk import TimmViTTrunk, TrunkOutput, evenly_spaced_blocks, resolve_out_indices

__all__ = ['TimmViTTrunk', 'TrunkOutput', 'ClassTokenReadout', 'check_model_name',
           'resolve_out_indices', 'evenly_spaced_blocks', 'GRID_MAPPINGS', 'PREFIX_MODES']
