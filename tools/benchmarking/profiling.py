"""``--profile N``: torch.profiler's table of the N most expensive operators of one call."""
from typing import Callable

import torch


def profile_table(step: Callable[[], None], rows: int, device: torch.device) -> str:
    """torch.profiler's operator table of one call, the ``rows`` largest self times (on the
    device's clock for a GPU run) first."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        step()
    sort_by = 'self_cuda_time_total' if len(activities) > 1 else 'self_cpu_time_total'
    return prof.key_averages().table(sort_by=sort_by, row_limit=rows)
