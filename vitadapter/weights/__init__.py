"""Reading weight files and loading them into trunks."""
from .loading import (CheckpointError, LoadReport, load_into_timm_model, read_state_dict,
                      unwrap_state_dict)

__all__ = ['CheckpointError', 'LoadReport', 'load_into_timm_model', 'read_state_dict',
           'unwrap_state_dict']
