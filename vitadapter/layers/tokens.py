"""Moving between maps and token sequences: levels are flattened row by row and concatenated."""
from typing import List, Sequence, Tuple

import torch

GridT = Tuple[int, int]


def maps_to_tokens(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Maps (B, C, h_i, w_i) -> tokens (B, sum h_i*w_i, C), level after level."""
    return torch.cat([m.flatten(2).transpose(1, 2) for m in maps], dim=1)


def tokens_to_maps(tokens: torch.Tensor, grids: Sequence[GridT]) -> List[torch.Tensor]:
    """Tokens (B, sum h_i*w_i, C) -> maps (B, C, h_i, w_i), the inverse of :func:`maps_to_tokens`."""
    sizes = [h * w for h, w in grids]
    if tokens.shape[1] != sum(sizes):
        raise ValueError(f"{tokens.shape[1]} tokens do not fill the grids {list(grids)} "
                         f"({sum(sizes)} cells)")
    parts = tokens.split(sizes, dim=1)
    return [p.transpose(1, 2).reshape(p.shape[0], p.shape[2], h, w) for p, (h, w) in zip(parts, grids)]
