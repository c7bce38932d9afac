"""Alternated timing: calls cycle through the variants (A, B, C, A, B, C, ...) so that drift in
the machine's speed hits every variant alike; the median of the repeats is kept."""
import statistics
from typing import Callable, Dict, List, Tuple

import torch

from vitadapter.layers import wall_seconds as timed


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work (nothing on a CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def measure(fns: Dict[str, Callable[[], None]], repeats: int, warmup: int,
            device: torch.device = torch.device('cpu')) -> Tuple[Dict[str, float], Dict[str, float]]:
    """(median seconds per call, seconds of the first warm-up call) of each function, calls
    alternating between the functions."""
    times: Dict[str, List[float]] = {name: [] for name in fns}
    first: Dict[str, float] = {}
    for i in range(warmup):
        for name, fn in fns.items():
            seconds = timed(fn, device)
            if i == 0:
                first[name] = seconds
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn, device))
    return {name: statistics.median(t) for name, t in times.items()}, first
