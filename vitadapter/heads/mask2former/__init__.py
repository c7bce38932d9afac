"""Mask2Former (Cheng et al., 2022) in plain PyTorch: no mmcv, mmdet or mmseg needed.

The parameters and their names are those of mmseg 1.x's ``Mask2FormerHead`` (mmdet 3.x's
``Mask2FormerHead`` with its ``MSDeformAttnPixelDecoder`` and ``Mask2FormerTransformerDecoder``), so
their state dicts load into :class:`Mask2Former` with ``strict=True`` and back. The pixel decoder's
deformable attention is vitadapter's own (:mod:`vitadapter.layers.deform_attn`: PyTorch
sampling on any device, mmcv's CUDA kernel only where it is installed), so the head trains on a
CPU and on every mm* stack.

* :mod:`.positional`: sine positional encoding of a map (float32, as mmdet computes it);
* :mod:`.blocks`: conv + GroupNorm, residual attention and feed-forward blocks (mmcv key layout);
* :mod:`.pixel_decoder`: multi-scale deformable-attention encoder + FPN level -> mask features;
* :mod:`.transformer_decoder`: masked cross-attention -> self-attention -> FFN layers, predictions;
* :mod:`.point_sampling`: reading maps at points, uncertainty-based importance sampling;
* :mod:`.matching`: Hungarian matching of queries to ground-truth masks (needs scipy);
* :mod:`.losses`: class, BCE-mask and dice losses with deep supervision;
* :mod:`.head`: the head (forward, loss, semantic inference).
"""
from .head import Mask2Former, semantic_inference, semantic_targets
from .losses import Mask2FormerLoss
from .matching import hungarian_match, match_cost
from .pixel_decoder import MSDeformAttnPixelDecoder
from .point_sampling import point_sample, uncertain_point_coords
from .positional import sine_positional_encoding
from .transformer_decoder import MaskedTransformerDecoder

__all__ = ['Mask2Former', 'Mask2FormerLoss', 'MSDeformAttnPixelDecoder', 'MaskedTransformerDecoder',
           'hungarian_match', 'match_cost', 'point_sample', 'uncertain_point_coords',
           'semantic_inference', 'semantic_targets', 'sine_positional_encoding']
