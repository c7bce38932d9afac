"""Whole segmentation models on a trunk, without a pyramid: EoMT (the encoder-only mask
transformer) and PMT (a plain mask transformer on a frozen trunk), their training schedules, and
EoMT's published weights (transformers' folders, tue-mps's Lightning checkpoints)."""
from .eomt import EoMT, MaskPredictions, MaskTransformer, semantic_scores
from .eomt_checkpoint import eomt_from_hf, load_eomt_checkpoint, read_eomt_checkpoint
from .pmt import PMT
from .schedules import MaskAnnealing, annealed_probability, two_stage_warmup_poly

__all__ = ['EoMT', 'PMT', 'MaskTransformer', 'MaskPredictions', 'semantic_scores', 'MaskAnnealing', 'annealed_probability',
           'two_stage_warmup_poly', 'eomt_from_hf', 'load_eomt_checkpoint', 'read_eomt_checkpoint']
