"""Extra pyramid levels above the coarsest one (ViTDet's and FPN's "top block").

Detectors whose RPN anchors span strides 4 to 64 (Mask R-CNN) need a fifth level above a
4/8/16/32 pyramid. ViTDet (Li et al., 2022; detectron2's ``SimpleFeaturePyramid`` with
``top_block=LastLevelMaxPool()``) and mmdet's ``FPN`` (``num_outs`` above the inputs, no extra
convolutions) both make it the same way: the last output level subsampled by 2 with a max pooling
of kernel 1 and stride 2, i.e. every other row and column, which for a map of side n keeps
``ceil(n / 2)`` of them (the stride-64 level of an image of side H is ``ceil(H / 64)`` whenever
the stride-32 one is ``ceil(H / 32)``).
"""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class LastLevelMaxPool(nn.Module):
    """Append ``num_extra`` levels, each the previous last level subsampled by 2.

    Args:
        num_extra: how many levels to add (1: strides 4/8/16/32 -> 4/8/16/32/64).

    Input: a sequence of maps (B, C_i, h_i, w_i), strides increasing. Output: a tuple with the same
    maps followed by ``num_extra`` maps (B, C_last, ceil(h / 2**k), ceil(w / 2**k)), k = 1, 2, ...
    No parameters.
    """

    def __init__(self, num_extra: int = 1):
        super().__init__()
        if not isinstance(num_extra, int) or isinstance(num_extra, bool) or num_extra < 1:
            raise ValueError(f"num_extra must be a positive int (1 adds a stride-64 level to a "
                             f"stride-32 pyramid), got {num_extra!r}")
        self.num_extra = num_extra

    def forward(self, levels: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if isinstance(levels, torch.Tensor) or len(levels) == 0:
            raise ValueError("LastLevelMaxPool takes the backbone's levels (a tuple of maps), got "
                             f"{type(levels).__name__}")
        out = list(levels)
        for _ in range(self.num_extra):
            out.append(F.max_pool2d(out[-1], kernel_size=1, stride=2))
        return tuple(out)

    def init_weights(self) -> None:
        """Nothing to initialise (mmengine's models call this on every child that has it)."""
