"""Whole segmentation models on a trunk, without a pyramid: EoMT (the encoder-only mask
transformer) and PMT (a plain mask transformer on a frozen trunk), and their training schedules."""
from .eomt import EoMT, MaskPredictions, MaskTransformer, semantic_scores
from .pmt import PMT
from .schedules import MaskAnnealing, annealed_probability, two_stage_warmup_poly

__all__ = ['EoMT', 'PMT', 'MaskTransformer', 'MaskPredictions', 'semantic_scores', 'MaskAnnealing', 'annealed_probability',
           'two_stage_warmup_poly']
