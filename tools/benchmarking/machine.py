"""The machine a run measured: CPU model and the vector / matrix instruction sets that decide
its speed, the instruction sets the libraries were restricted to (``ISA_LIMITS``: a run on an
AVX-512 CPU with ``ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2``
runs AVX2 code paths, and says so), torch and its CPU kernels (MKL, oneDNN), threads, and the GPU
of a GPU run. Printed at the top of every run and stored in the JSON under ``machine``."""
import os
import platform
import re
from typing import Optional, Set, Tuple

import torch

# avx2 / avx512f: the vector units torch's CPU kernels use; avx512_bf16 and amx_*: bf16 matmuls
# in hardware (oneDNN uses AMX tiles for bf16 / int8 when they exist)
WATCHED_FLAGS = ('avx2', 'avx512f', 'avx512_bf16', 'amx_tile', 'amx_bf16', 'amx_int8')
# environment variables that cap the code paths of torch's own kernels, MKL and oneDNN (read
# when each library starts: set them before the process starts)
ISA_LIMITS = ('ATEN_CPU_CAPABILITY', 'MKL_ENABLE_INSTRUCTIONS', 'ONEDNN_MAX_CPU_ISA', 'DNNL_MAX_CPU_ISA')


def isa_limits(environ=os.environ) -> dict:
    """The ``ISA_LIMITS`` variables set (non-empty) in ``environ``, name -> value."""
    return {name: environ[name] for name in ISA_LIMITS if environ.get(name)}


def parse_cpuinfo(text: str) -> Tuple[Optional[str], Optional[Set[str]]]:
    """(model name, set of flags) of the first processor in a ``/proc/cpuinfo`` text; None for
    what it lacks (ARM kernels write no 'model name', some no 'flags')."""
    model = flags = None
    for line in text.splitlines():
        key, sep, value = line.partition(':')
        key = key.strip()
        if not sep:
            continue
        if key == 'model name' and model is None:
            model = value.strip()
        elif key == 'flags' and flags is None:
            flags = set(value.split())
        if model is not None and flags is not None:
            break
    return model, flags


def _library_version(config: str, pattern: str) -> Optional[str]:
    match = re.search(pattern, config)
    return match.group(1) if match else None


def machine_record(device: str = 'cpu', allocator: Optional[str] = None) -> dict:
    """What the machine is, as far as the timings depend on it (see the module doc); ``allocator``:
    :func:`~.allocator.allocator_record`'s words (a CPU run's large tensors cost what it does)."""
    try:
        with open('/proc/cpuinfo') as f:
            model, flags = parse_cpuinfo(f.read())
    except OSError:  # not Linux
        model, flags = None, None
    config = torch.__config__.show()
    record = dict(
        cpu=model or platform.processor() or platform.machine() or 'unknown',
        cpu_flags=None if flags is None else {flag: flag in flags for flag in WATCHED_FLAGS},
        logical_cpus=os.cpu_count(),
        torch=torch.__version__,
        torch_cpu_capability=torch.backends.cpu.get_cpu_capability(),
        isa_limits=isa_limits(),
        threads=torch.get_num_threads(),
        mkl=torch.backends.mkl.is_available(),
        mkl_version=_library_version(config, r'Math Kernel Library Version ([\d.]+)'),
        onednn=torch.backends.mkldnn.is_available(),
        onednn_version=_library_version(config, r'(?:MKL-DNN|oneDNN) v?([\d.]+)'),
    )
    if allocator is not None:
        record['allocator'] = allocator
    if device.startswith('cuda'):
        record['gpu'] = torch.cuda.get_device_name(torch.device(device))
    return record


def describe(record: dict) -> str:
    """One line: ``machine: <CPU>, <n> logical CPUs, <instruction sets>[, libraries restricted
    to VAR=VALUE ...], torch ..., threads, ...``."""
    flags = record['cpu_flags']
    if flags is None:
        isa = 'instruction sets unknown'
    else:
        isa = ' '.join(f for f, on in flags.items() if on) or f"none of {'/'.join(WATCHED_FLAGS)}"
    parts = [record['cpu'], f"{record['logical_cpus']} logical CPUs",
             f"{isa} (torch kernels: {record['torch_cpu_capability']})"]
    limits = record.get('isa_limits')
    if limits:
        parts.append('libraries restricted to ' + ' '.join(f'{k}={v}' for k, v in limits.items()))
    parts += [f"torch {record['torch']}", f"{record['threads']} threads"]
    if record['mkl']:
        parts.append(f"MKL {record['mkl_version'] or '(version unknown)'}")
    if record['onednn']:
        parts.append(f"oneDNN {record['onednn_version'] or '(version unknown)'}")
    if 'gpu' in record:
        parts.append(f"GPU {record['gpu']}")
    elif record.get('allocator'):
        parts.append(record['allocator'])
    return 'machine: ' + ', '.join(parts)
