"""Prefix tokens: what happens to the class token when token sequences become maps.

timm puts the prefix tokens before the patch tokens: ``[class, registers..., patches...]``
(``num_prefix_tokens`` = class + registers (+ distillation)). Register tokens are scratch space
(Darcet et al., "Vision Transformers Need Registers"): they are split off and never treated as
patches or mixed into the maps. The class token can be read out into the maps as DPT defines it:

* ``'ignore'``: patch tokens only;
* ``'add'``: every patch token plus the class token;
* ``'project'``: ``GELU(Linear_2C->C(concat(patch, class)))`` per token, one projection per
  block output (DPT's "readout project").
"""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn

PREFIX_MODES = ('ignore', 'add', 'project')


class ClassTokenReadout(nn.Module):
    """Combine patch maps with their block's class token.

    Args:
        mode: 'ignore', 'add' or 'project'.
        embed_dim: the trunk's width C.
        num_maps: how many block outputs are read out ('project' has one Linear per output).
    """

    def __init__(self, mode: str, embed_dim: int, num_maps: int):
        super().__init__()
        if mode not in PREFIX_MODES:
            raise ValueError(f"prefix_tokens={mode!r} is not one of {PREFIX_MODES}")
        self.mode = mode
        if mode == 'project':
            self.projects = nn.ModuleList(nn.Linear(2 * embed_dim, embed_dim) for _ in range(num_maps))

    def forward(self, maps: Sequence[torch.Tensor],
                class_tokens: Sequence[Optional[torch.Tensor]]) -> List[torch.Tensor]:
        """maps: (B, C, h, w) each; class_tokens: (B, C) each -> maps (B, C, h, w)."""
        if self.mode == 'ignore':
            return list(maps)
        if self.mode == 'add':
            return [x + cls[:, :, None, None] for x, cls in zip(maps, class_tokens)]
        return [self._project(x, cls, proj) for x, cls, proj in zip(maps, class_tokens, self.projects)]

    @staticmethod
    def _project(x: torch.Tensor, cls: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
        # Linear(concat(p, c)) = W_p p + (W_c c + b): the class half is computed once per image
        # instead of being concatenated to every token.
        dim = x.shape[1]
        w_patch, w_cls = linear.weight[:, :dim], linear.weight[:, dim:]
        per_image = nn.functional.linear(cls, w_cls, linear.bias)  # (B, C)
        per_token = torch.einsum('oc,bchw->bohw', w_patch, x)
        return nn.functional.gelu(per_token + per_image[:, :, None, None])
