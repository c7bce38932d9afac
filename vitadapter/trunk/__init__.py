"""The timm ViT trunk: chosen blocks, prefix tokens, padding and grid mapping."""
from .grid import GRID_MAPPINGS, grid_size, pad_to_multiple, resample_to_grid
from .prefix import PREFIX_MODES, ClassTokenReadout
from .timm_trunk import TimmViTTrunk, TrunkOutput, check_model_name, resolve_out_indices

__all__ = ['TimmViTTrunk', 'TrunkOutput', 'ClassTokenReadout', 'check_model_name',
           'resolve_out_indices', 'grid_size', 'pad_to_multiple', 'resample_to_grid',
           'GRID_MAPPINGS', 'PREFIX_MODES']
