"""Head building blocks in plain PyTorch (no mm* package): what mmseg-registered heads in
:mod:`vitadapter.engine.heads` compute with, usable from any training code.

* :mod:`.resized_conv`: a 3x3 convolution of bilinearly resized maps with the channel mixing done
  at each map's own resolution (FastUPerHead's fusion convolutions), exact up to float rounding.
* :mod:`.mask2former`: Mask2Former (pixel decoder on vitadapter's deformable attention, masked-
  attention decoder, Hungarian-matched losses) with mmseg's ``Mask2FormerHead`` parameter names.
"""
from .mask2former import Mask2Former, Mask2FormerLoss, semantic_inference, semantic_targets
from .resized_conv import (conv3x3_of_resized, conv3x3_of_resized_concat, resized_conv_saves_work,
                           tap_resize_matrix)

__all__ = ['Mask2Former', 'Mask2FormerLoss', 'semantic_inference', 'semantic_targets', 'conv3x3_of_resized', 'conv3x3_of_resized_concat', 'resized_conv_saves_work',
           'tap_resize_matrix']
