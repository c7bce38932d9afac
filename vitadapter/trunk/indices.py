"""Which blocks of a ViT to take: timm's ``out_indices`` convention, checked with errors that name
the fix, resolved by timm's own ``feature_take_indices``."""
from typing import List, Optional, Sequence, Union

from ..compat import feature_take_indices

IndicesT = Union[int, Sequence[int]]


def evenly_spaced_blocks(num_blocks: int, count: int) -> List[int]:
    """The last block of each of ``count`` equal groups: 12 blocks, 4 outputs -> [2, 5, 8, 11];
    fewer blocks than outputs: every block (2 blocks, 4 outputs -> [0, 1])."""
    count = min(count, num_blocks)
    return [num_blocks * (i + 1) // count - 1 for i in range(count)]


def resolve_out_indices(out_indices: Optional[IndicesT], num_blocks: int,
                        default_count: int = 4) -> List[int]:
    """timm's convention -> sorted absolute block indices. An int N means the last N blocks;
    a sequence holds block indices, negatives counting from the end; None means
    ``default_count`` evenly spaced blocks ending with the last one."""
    if out_indices is None:
        return evenly_spaced_blocks(num_blocks, default_count)
    if isinstance(out_indices, bool) or not isinstance(out_indices, (int, Sequence)):
        raise TypeError(f"out_indices must be an int (last N blocks) or a sequence of block "
                        f"indices, got {out_indices!r}")
    if isinstance(out_indices, int):
        if not 0 < out_indices <= num_blocks:
            raise ValueError(f"out_indices={out_indices} asks for the last {out_indices} blocks but "
                             f"the model has {num_blocks} (use 1 to {num_blocks})")
    else:
        if len(out_indices) == 0:
            raise ValueError("out_indices is empty: choose at least one block")
        for i in out_indices:
            if not isinstance(i, int) or isinstance(i, bool):
                raise TypeError(f"out_indices must hold ints, got {i!r} in {tuple(out_indices)}")
            if not -num_blocks <= i < num_blocks:
                raise ValueError(f"out_indices {tuple(out_indices)}: block {i} is out of range; the "
                                 f"model has {num_blocks} blocks (indices 0 to {num_blocks - 1}, or "
                                 f"-{num_blocks} to -1 from the end)")
        out_indices = list(out_indices)
    resolved, _ = feature_take_indices(num_blocks, out_indices)
    resolved = [int(i) for i in resolved]
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"out_indices {tuple(out_indices)} names the same block twice "
                         f"(as absolute indices: {resolved})")
    if resolved != sorted(resolved):
        raise ValueError(f"out_indices {tuple(out_indices)} must go from shallow to deep blocks "
                         f"(as absolute indices: {resolved})")
    return resolved
