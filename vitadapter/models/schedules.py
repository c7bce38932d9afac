"""EoMT's training schedules as plain functions of the iteration: mask annealing and the two-stage
warm-up (tue-mps/eomt ``training/lightning_module.py`` and ``two_stage_warmup_poly_schedule.py``).

Both depend on the iteration only, so a resumed run takes exactly the values of an uninterrupted
one. The mmseg glue drives them from mmengine's iteration counter (a hook and a scheduler).
"""
from typing import List, Sequence, Tuple


def annealed_probability(iteration: int, start: int, end: int, power: float = 0.9) -> float:
    """The probability that a query keeps its attention mask at ``iteration`` (0-based): 1 before
    ``start``, 0 from ``end`` on, ``(1 - (iteration - start) / (end - start)) ** power`` between."""
    if iteration < start:
        return 1.0
    if iteration >= end:
        return 0.0
    return (1.0 - (iteration - start) / (end - start)) ** power


class MaskAnnealing:
    """Mask annealing over ``N`` masked blocks: block i keeps its masks with a probability that
    falls from 1 to 0 (poly ``power``) over its window ``[starts[i], ends[i])``, earlier blocks first.

    Args:
        starts / ends: one iteration per masked block (EoMT ADE20K ViT-L: starts [6520, 13040,
            19560, 26080], ends [13040, 19560, 26080, 32600]).
        power: the poly exponent (0.9).
        max_iters: the schedule's length: a window that ends after it is refused (the masks would
            still be on at the end of training, and inference runs without them).
    """

    def __init__(self, starts: Sequence[int], ends: Sequence[int], power: float = 0.9,
                 max_iters: int = None):
        starts, ends = [int(s) for s in starts], [int(e) for e in ends]
        if len(starts) != len(ends) or not starts:
            raise ValueError(f"mask annealing needs one start and one end per masked block, got "
                             f"starts={starts} and ends={ends}")
        for i, (s, e) in enumerate(zip(starts, ends)):
            if not 0 <= s < e:
                raise ValueError(f"mask annealing window {i} [{s}, {e}) is empty or negative: each "
                                 f"start must be >= 0 and below its end")
        if max_iters is not None and max(ends) > max_iters:
            late = [i for i, e in enumerate(ends) if e > max_iters]
            raise ValueError(f"mask annealing windows {late} end at {[ends[i] for i in late]}, after "
                             f"the schedule's {max_iters} iterations: the masks would still be on when "
                             f"training stops, and inference runs without them. End every window by "
                             f"iteration {max_iters} (ends={ends})")
        self.starts, self.ends, self.power = starts, ends, power

    @classmethod
    def evenly(cls, num_blocks: int, max_iters: int, power: float = 0.9) -> 'MaskAnnealing':
        """EoMT's ADE20K layout scaled to a schedule of ``max_iters``: annealing from 16.3% to
        81.5% of it in ``num_blocks`` equal windows, one block after another, the rest trained
        without masks as inference runs (40000 iterations, 4 blocks: windows of 6520 from 6520
        to 32600, the authors' own)."""
        first, last = round(max_iters * 0.163), round(max_iters * 0.815)
        bounds = [first + (last - first) * i // num_blocks for i in range(num_blocks + 1)]
        return cls(bounds[:-1], bounds[1:], power, max_iters)

    def __len__(self) -> int:
        return len(self.starts)

    def probabilities(self, iteration: int) -> List[float]:
        """The keep probability of every masked block at ``iteration`` (0-based)."""
        return [annealed_probability(iteration, s, e, self.power) for s, e in zip(self.starts, self.ends)]


def two_stage_warmup_poly(iteration: int, max_iters: int, warmup: Tuple[int, int], power: float = 0.9,
                          trunk: bool = False) -> float:
    """EoMT's learning-rate factor at ``iteration``: the head (``trunk=False``) warms up linearly
    over ``warmup[0]`` iterations, then decays as poly over the rest; the trunk stays at 0 during
    the head's warm-up, warms up linearly over ``warmup[1]`` more, then decays as poly."""
    head_warmup, trunk_warmup = warmup
    if not trunk:
        if head_warmup > 0 and iteration < head_warmup:
            return iteration / head_warmup
        done = max(0, iteration - head_warmup)
        return max(0.0, 1 - done / max(1, max_iters - head_warmup)) ** power
    if iteration < head_warmup:
        return 0.0
    if iteration < head_warmup + trunk_warmup:
        return (iteration - head_warmup) / trunk_warmup
    done = max(0, iteration - head_warmup - trunk_warmup)
    return max(0.0, 1 - done / max(1, max_iters - head_warmup - trunk_warmup)) ** power
