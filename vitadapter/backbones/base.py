"""The contract every vitadapter backbone keeps (detectron2's ``Backbone``, timm's ``feature_info``).

A backbone holds a :class:`~vitadapter.trunk.TimmViTTrunk` as ``trunk`` and returns a tuple of
maps, strides increasing, described by ``feature_info`` (timm's :class:`~timm.models.FeatureInfo`:
``num_chs``, ``reduction``, ``module`` and the ``block`` of the trunk each level comes from).
What can be derived from that description is derived here, once.
"""
import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch.nn as nn
from timm.models import FeatureInfo

from ..layers import grid_size


class LevelSpec(NamedTuple):
    """detectron2-style description of one output level."""
    channels: int
    stride: int


class Backbone(nn.Module):
    """Base class: subclasses build ``self.trunk`` and call :meth:`describe_levels` once."""

    feature_info: FeatureInfo

    def describe_levels(self, channels: Sequence[int], strides: Sequence[int], modules: Sequence[str],
                        blocks: Sequence[int]) -> None:
        """Record the output levels (one entry each, strides increasing) as ``feature_info``."""
        self.feature_info = FeatureInfo([
            dict(num_chs=int(c), reduction=int(s), module=m, block=int(b))
            for c, s, m, b in zip(channels, strides, modules, blocks)
        ], out_indices=tuple(range(len(channels))))

    @property
    def strides(self) -> Tuple[int, ...]:
        """Stride of every output level."""
        return tuple(self.feature_info.reduction())

    @property
    def level_blocks(self) -> List[int]:
        """The trunk block each output level is computed from (the last one it reads)."""
        return [info['block'] for info in self.feature_info.get_dicts()]

    @property
    def load_report(self):
        """What loading ``checkpoint`` did (None when no checkpoint was given)."""
        return self.trunk.load_report

    def output_shape(self) -> Dict[str, LevelSpec]:
        """detectron2-style ``{'p2': LevelSpec(channels, stride=4), ...}`` (levels of equal stride,
        as with ViTPyramid(pyramid='none'), are named by block: ``'p4_b2'``)."""
        strides = list(self.strides)
        names = [f'p{int(math.log2(s))}' + (f'_b{b}' if strides.count(s) > 1 else '')
                 for s, b in zip(strides, self.level_blocks)]
        return {n: LevelSpec(c, s) for n, c, s in zip(names, self.feature_info.channels(), strides)}

    def output_sizes(self, image_size: Sequence[int]) -> List[Tuple[int, int]]:
        """(h, w) of every level for an input of ``image_size`` = (H, W): ceil(H/s), ceil(W/s)."""
        return [grid_size(image_size, (s, s)) for s in self.strides]

    def describe_parts(self) -> List[Tuple[str, Optional[nn.Module]]]:
        """(name, module) of the backbone's parts, the trunk first: what ``vitadapter-info``
        counts parameters of."""
        parts = [('trunk (ViT)', self.trunk)]
        parts += [(name, module) for name, module in self.named_children() if module is not self.trunk]
        return parts
