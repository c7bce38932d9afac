"""Pick the faster of equivalent computations by timing them on the real inputs, once per key.

Like ``torch.backends.cudnn.benchmark``: the first call with a new key (input shapes, dtype,
device, grad mode, ... as the caller builds it) runs every candidate ``rounds`` times, alternated
(A, B, A, B: drift in the machine's speed hits both alike), keeps the one with the smallest best
time, and caches the name; later calls with that key only look it up. Which formulation wins
depends on the CPU, its instruction set and the BLAS / oneDNN code paths it gets (see
``FastUPerHead``), so it is measured where it runs, not guessed.

Nothing is measured (``None`` is returned, nothing cached) while the call cannot be timed
meaningfully: inside ``torch.compile`` / tracing / ONNX export, or under a Python dispatch mode
(FLOP counting, fake tensors); the caller then uses its default.
"""
import time
from typing import Callable, Dict, Hashable, Optional

import torch

from ..compat import current_dispatch_mode

__all__ = ['MeasuredChoice', 'can_measure', 'is_traced', 'wall_seconds']


def wall_seconds(fn: Callable[[], None], device: torch.device) -> float:
    """Wall-clock seconds of ``fn()``, waiting for the device's queued work before and after."""
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda *_: None)
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def is_traced() -> bool:
    """Whether the current call is being compiled, traced or exported (a graph is recorded:
    sizes may be symbolic, and no Python-side state should change)."""
    return (torch.compiler.is_compiling() or torch.jit.is_tracing()
            or torch.onnx.is_in_onnx_export())


def can_measure() -> bool:
    """Whether a call now runs eagerly on real tensors (not compiled, traced, exported, or
    under a Python dispatch mode such as ``FlopCounterMode``)."""
    return not is_traced() and current_dispatch_mode() is None


class MeasuredChoice:
    """A cache ``key -> name of the fastest candidate``, filled by timing.

    Args:
        rounds: timed runs of each candidate at the first call of a key (alternated); the best
            is kept (the first run also pays one-time costs: allocations, kernel set-up).
        measure: ``measure(name, fn) -> seconds`` runs ``fn`` once and returns its time; default
            the wall clock (``wall_seconds`` on the given device). Tests inject a scripted one.
    """

    def __init__(self, rounds: int = 2,
                 measure: Optional[Callable[[str, Callable[[], None]], float]] = None):
        if rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {rounds}")
        self.rounds = rounds
        self.measure = measure
        self.choices: Dict[Hashable, str] = {}
        self.timings: Dict[Hashable, Dict[str, float]] = {}  # best seconds per candidate, per key

    def pick(self, key: Hashable, candidates: Dict[str, Callable[[], None]],
             device: torch.device = torch.device('cpu')) -> Optional[str]:
        """The cached choice for ``key``, else time ``candidates`` (name -> call), cache and
        return the fastest (ties: the first listed); None when nothing can be measured now."""
        if key in self.choices:
            return self.choices[key]
        if not can_measure():
            return None
        measure = self.measure or (lambda name, fn: wall_seconds(fn, device))
        best = {name: float('inf') for name in candidates}
        for _ in range(self.rounds):
            for name, fn in candidates.items():
                best[name] = min(best[name], measure(name, fn))
        choice = min(best, key=best.get)  # min keeps the first of equal values
        self.choices[key], self.timings[key] = choice, best
        return choice
