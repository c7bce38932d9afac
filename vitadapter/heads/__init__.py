"""Dense-prediction heads in plain PyTorch (no mm* package), usable from any training code; the
mmseg-registered heads in :mod:`vitadapter.engine` compute with them.

* :mod:`.mask2former`: Mask2Former (pixel decoder on the shared deformable attention, masked-
  attention decoder, Hungarian-matched losses) with mmseg's ``Mask2FormerHead`` parameter names.

FastUPerHead's resized convolution is a shared layer: :mod:`vitadapter.layers.resized_conv`.
"""
from .mask2former import Mask2Former, Mask2FormerLoss, semantic_inference, semantic_targets

__all__ = ['Mask2Former', 'Mask2FormerLoss', 'semantic_inference', 'semantic_targets']
