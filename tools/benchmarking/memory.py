"""Peak memory of one call of a variant, each measured in a fresh process: on a CPU from the
kernel's resident-set counters (Linux), on a GPU from torch's allocator statistics."""
import argparse
import multiprocessing
import os
import traceback
from queue import Empty
from typing import Tuple

import torch
import torch.nn as nn

from .cases import build_case
from .settings import Setting
from .timing import synchronize

MALLOC_MMAP_THRESHOLD = '65536'


def status_kib(key: str) -> int:
    """A /proc/self/status counter in KiB (VmRSS: resident now, VmHWM: peak)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def _free_grads(model: nn.Module) -> None:
    for p in model.parameters():
        p.grad = None


def _measure_cpu_memory(args: argparse.Namespace, setting: Setting, size) -> Tuple[float, float]:
    baseline = status_kib('VmRSS')
    case = build_case(args, setting, size)
    case.step()  # warm-up: lazily allocated state (AdamW moments, caches) exists from here on
    _free_grads(case.model)
    before = status_kib('VmRSS')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset the peak resident set to the current one
    case.step()
    peak = status_kib('VmHWM')
    return (peak - baseline) / 1024, (peak - before) / 1024


def _measure_cuda_memory(args: argparse.Namespace, setting: Setting, size) -> Tuple[float, float]:
    device = torch.device(args.device)
    baseline = torch.cuda.memory_allocated(device)
    case = build_case(args, setting, size)
    case.step()
    _free_grads(case.model)
    synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    case.step()
    synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return (peak - baseline) / 2 ** 20, (peak - before) / 2 ** 20


def _peak_memory_child(args: dict, setting: tuple, size: tuple, queue) -> None:
    try:
        ns = argparse.Namespace(**args)
        if ns.threads:
            torch.set_num_threads(ns.threads)
        torch.manual_seed(0)
        measure_fn = _measure_cuda_memory if ns.device.startswith('cuda') else _measure_cpu_memory
        queue.put(('ok', measure_fn(ns, Setting(*setting), tuple(size))))
    except BaseException:  # report the failure instead of leaving the parent waiting
        queue.put(('error', traceback.format_exc()))


def _result_of(child, queue, setting: Setting) -> tuple:
    """The child's ('ok' | 'error', result); a clear error, not a wait forever, when it dies before
    reporting (an error while starting: importing, unpickling its arguments; or killed)."""
    while True:
        try:
            return queue.get(timeout=1.0)
        except Empty:
            if not child.is_alive():
                try:  # it may have reported just before exiting
                    return queue.get(timeout=1.0)
                except Empty:
                    child.join()
                    raise RuntimeError(
                        f"the memory measurement of {setting.variant!r} failed: its process exited "
                        f"with code {child.exitcode} before reporting (its error, if any, is printed "
                        f"above: a failed import or start, or the process was killed)") from None


def peak_memory_mib(args: argparse.Namespace, setting: Setting, size) -> Tuple[float, float]:
    """(peak MiB, call MiB) of one call, measured in a fresh process (see the package doc)."""
    os.environ['MALLOC_MMAP_THRESHOLD_'] = MALLOC_MMAP_THRESHOLD  # read by glibc at process start
    ctx = multiprocessing.get_context('spawn')
    queue = ctx.Queue()
    child = ctx.Process(target=_peak_memory_child, args=(vars(args), tuple(setting), tuple(size), queue))
    child.start()
    status, result = _result_of(child, queue, setting)
    child.join()
    if status != 'ok' or child.exitcode != 0:
        raise RuntimeError(f"the memory measurement of {setting.variant!r} failed "
                           f"(exit code {child.exitcode}):\n{result}")
    return result
