"""Weights from every source users have, loaded into timm ViTs.

Reading is safe (safetensors or ``torch.load(weights_only=True)``); the layout is recognised
(timm, official DINOv2 and DINOv3, Hugging Face ViT/Dinov2/Dinov2WithRegisters/DINOv3ViT,
mmseg/mmpretrain VisionTransformer, MAE, BEiT; also inside segmentor/classifier checkpoints) and
converted to timm's. Weights that need another variant of the model (DINOv3 ``_qkvb`` or not,
SwiGLU or MLP) are refused with the model to use.
This package knows timm's layout and the sources' layouts, never a vitadapter backbone's attribute
names (official ViT-Adapter checkpoints: :mod:`vitadapter.backbones.vit_adapter_checkpoint`).
Command line: ``vitadapter-convert`` (:mod:`vitadapter.convert`).
"""
from .conversion import convert_checkpoint, describe_vit, save_state_dict
from .formats import FORMATS, UNKNOWN, WeightFormat, detect_format, split_vit
from .interpolation import POS_EMBED_INTERPOLATIONS, interpolate_pos_grid
from .loading import LoadReport, load_checkpoint, load_into_timm_model
from .reading import Checkpoint, CheckpointError, read_checkpoint, read_state_dict, unwrap_state_dict

__all__ = ['Checkpoint', 'CheckpointError', 'FORMATS', 'LoadReport', 'POS_EMBED_INTERPOLATIONS',
           'UNKNOWN', 'WeightFormat', 'convert_checkpoint', 'describe_vit', 'detect_format',
           'interpolate_pos_grid', 'load_checkpoint', 'load_into_timm_model', 'read_checkpoint',
           'read_state_dict', 'save_state_dict', 'split_vit', 'unwrap_state_dict']
