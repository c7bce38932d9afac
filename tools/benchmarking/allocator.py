"""What the C allocator does with large tensors, which decides what a CPU run pays for them.

glibc's malloc serves every block above its mmap threshold (128 KiB, rising with use to at most
32 MiB) with a fresh ``mmap`` and hands it back to the kernel when it is freed: every call pays the
page faults of its large tensors again (about 0.2 ms per MB on the AMD EPYC of the measured tables;
EoMT's 150 class maps at 512x512 and batch 2 are 315 MB). CUDA's caching allocator, jemalloc and
tcmalloc keep freed memory for reuse. ``--keep-freed-memory`` makes glibc do the same (``mallopt``:
blocks below 1 GiB come from the heap, which is never trimmed), so that the run times the
arithmetic and not the kernel's page faults; the machine line says so. The price is resident
memory: the heap grows until freed blocks fit the new ones (torch aligns them), then holds its
peak. Memory figures (``--memory``) come from child processes that hand freed memory back at
once (``MALLOC_MMAP_THRESHOLD_`` 64 KiB), with or without this option.
"""
import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
KEPT_MMAP_THRESHOLD = 1 << 30
KEPT_TRIM_THRESHOLD = (1 << 31) - 1  # mallopt takes a C int
KEPT = 'glibc malloc keeps freed memory (--keep-freed-memory)'


def keep_freed_memory() -> str:
    """Make glibc keep freed memory for reuse in this process (see the module doc); returns the
    allocator's description. Raises RuntimeError where the C library is not glibc."""
    name = ctypes.util.find_library('c')
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError) as err:
        raise RuntimeError(f"--keep-freed-memory needs glibc's mallopt; the C library here "
                           f"({name}) has none ({err}). Preload jemalloc or tcmalloc instead "
                           f"(LD_PRELOAD=...), which keep freed memory themselves") from None
    if not (mallopt(M_MMAP_THRESHOLD, KEPT_MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, KEPT_TRIM_THRESHOLD)):
        raise RuntimeError(f"glibc's mallopt refused the thresholds of --keep-freed-memory "
                           f"(mmap {KEPT_MMAP_THRESHOLD}, trim {KEPT_TRIM_THRESHOLD}); preload "
                           f"jemalloc or tcmalloc instead (LD_PRELOAD=...)")
    return KEPT


def allocator_record(kept: bool = False, environ=os.environ) -> str:
    """The allocator of this run, in words: 'glibc malloc (default)', :data:`KEPT`, or the
    ``LD_PRELOAD`` that replaces it (jemalloc, tcmalloc), with the ``MALLOC_CONF`` (jemalloc's)
    and glibc ``MALLOC_*_`` variables set."""
    preload = environ.get('LD_PRELOAD')
    parts = [KEPT if kept else (f'LD_PRELOAD={preload}' if preload else 'glibc malloc (default)')]
    if kept and preload:
        parts.append(f'LD_PRELOAD={preload}')
    parts += [f'{k}={v}' for k, v in sorted(environ.items())
              if k == 'MALLOC_CONF' or (k.startswith('MALLOC_') and k.endswith('_'))]
    return ', '.join(parts)
