"""Level embeddings: a learned vector per spatial prior level, so attention can tell them apart."""
from typing import Sequence

import torch
import torch.nn as nn

from ...layers import maps_to_tokens


class LevelEmbedding(nn.Module):
    """Add ``weight[i]`` to every token of prior level i (c2, c3, c4) and flatten the levels.

    ``weight`` (num_levels, C) is the official ``level_embed`` (standard normal at init).
    forward: maps (B, C, h_i, w_i) -> tokens (B, sum h_i*w_i, C).
    """

    def __init__(self, embed_dim: int, num_levels: int = 3):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_levels, embed_dim))
        nn.init.normal_(self.weight)

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(maps) != self.weight.shape[0]:
            raise ValueError(f"expected {self.weight.shape[0]} prior levels, got {len(maps)}")
        return maps_to_tokens([m + e[:, None, None] for m, e in zip(maps, self.weight)])
