"""Time (and measure the memory of) ViTPyramid / ViTAdapter variants in one process, as ratios.

    python tools/benchmark.py --model vit_base_patch16_224 --size 512 512
    python tools/benchmark.py --model vit_small_patch14_reg4_dinov2 --variants trunk maps input
    python tools/benchmark.py --model vit_small_patch16_224 --variants simple adapter --mode train --memory

Variants (fp32 on the CPU; the trunk is ``--model`` for all of them):
  trunk            the timm ViT alone (the chosen blocks, what ViTPyramid's trunk computes)
  feature2pyramid  ViTPyramid with the channel-keeping pyramid, one block per level
  simple           ViTPyramid's default: channel-halving pyramid (C/4, C/2, C, C), one block per level
  vitdet           the ViTDet pyramid (1x1 + 3x3 output convs to 256 channels), one block per level
  vitdet-last      the ViTDet pyramid fed by the last block only, as in ViTDet
  maps / input     patch-14 trunks only: the two grid mappings (default pyramid)
  adapter          ViTAdapter with the paper's settings for the trunk's width (192: Tiny, 384: Small,
                   768: Base, 1024: Large; other widths: Small's), 4 interactions
  adapter-cp       the same with grad checkpointing of blocks, injectors and extractors

Modes:
  forward  (default) a forward pass in eval mode without autograd;
  train    one training step in train mode: forward, backward of the mean square of every output
           level (a stand-in for the heads, the same for all variants), AdamW step. Stochastic depth
           is off in every variant so that they do the same work.
Runs alternate between variants (A, B, C, A, B, C, ...) so that drift in the machine's speed hits
every variant alike; the median of --repeats runs is reported, and its ratio to the first variant.

--memory: peak memory per variant, each in a fresh process, from the kernel's resident-set counters
(``VmRSS``, and ``VmHWM``, the peak, reset through ``/proc/self/clear_refs`` before the measured
call). After the model is built and one warm-up call made (AdamW's state exists), gradients are
freed and one call is measured:
  peak MiB   the process's peak during the call minus its resident set before the model was built:
             all the model costs at its peak (weights, optimizer state, gradients, activations);
  call MiB   the peak during the call minus the resident set just before it: activations,
             gradients and temporaries of the call.
glibc is told to return every block of 64 KiB or more to the system when freed
(``MALLOC_MMAP_THRESHOLD_``), so freed tensors do not hide in malloc's cache. Linux only.
"""
import argparse
import json
import multiprocessing
import os
import statistics
import time
from typing import Tuple

import torch

from vitadapter import ViTAdapter, ViTPyramid

VARIANTS = {
    'trunk': dict(),
    'feature2pyramid': dict(pyramid='feature2pyramid'),
    'simple': dict(pyramid='simple'),
    'vitdet': dict(pyramid='simple', out_channels=256),
    'vitdet-last': dict(pyramid='simple', out_channels=256, out_indices=(-1,)),
    'maps': dict(grid_mapping='maps'),
    'input': dict(grid_mapping='input'),
    'adapter': dict(),
    'adapter-cp': dict(grad_checkpointing=True),
}
ADAPTER_ARCH_BY_WIDTH = {192: 'tiny', 384: 'small', 768: 'base', 1024: 'large'}
MALLOC_MMAP_THRESHOLD = '65536'


def build(model_name: str, variant: str, img_size) -> torch.nn.Module:
    if variant.startswith('adapter'):
        width = ViTPyramid(model_name, img_size=img_size, depth=1).trunk.embed_dim
        arch = ADAPTER_ARCH_BY_WIDTH.get(width, 'small')
        return ViTAdapter(arch=arch, model_name=model_name, img_size=img_size, drop_path_rate=0.0,
                          **VARIANTS[variant])
    model = ViTPyramid(model_name, img_size=img_size, **VARIANTS[variant])
    return model.trunk if variant == 'trunk' else model


def outputs(result):
    """Every tensor a variant returns (ViTPyramid/ViTAdapter levels, or the trunk's maps)."""
    return list(result.maps) if hasattr(result, 'maps') else list(result)


def make_step(model: torch.nn.Module, x: torch.Tensor, mode: str):
    """A function running one call of ``mode`` on ``model``."""
    if mode == 'forward':
        model.eval()

        def forward():
            with torch.no_grad():
                model(x)
        return forward
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        loss = sum(y.float().pow(2).mean() for y in outputs(model(x)))
        loss.backward()
        optimizer.step()
    return train_step


def measure(fns: dict, repeats: int, warmup: int) -> dict:
    """Median seconds per call of each function, alternating between them."""
    times = {name: [] for name in fns}
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _status_kib(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def _peak_memory_child(args: dict, variant: str, queue) -> None:
    if args['threads']:
        torch.set_num_threads(args['threads'])
    torch.manual_seed(0)
    x = torch.randn(args['batch'], 3, *args['size'])
    baseline = _status_kib('VmRSS')
    model = build(args['model'], variant, tuple(args['size']))
    step = make_step(model, x, args['mode'])
    step()  # warm-up: lazily allocated state (AdamW moments, caches) exists from here on
    for p in model.parameters():
        p.grad = None
    before = _status_kib('VmRSS')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset the peak resident set to the current one
    step()
    peak = _status_kib('VmHWM')
    queue.put(((peak - baseline) / 1024, (peak - before) / 1024))


def peak_memory_mib(args: argparse.Namespace, variant: str) -> Tuple[float, float]:
    """(peak MiB, call MiB) of one call, measured in a fresh process (see the module doc)."""
    os.environ['MALLOC_MMAP_THRESHOLD_'] = MALLOC_MMAP_THRESHOLD  # read by glibc at process start
    ctx = multiprocessing.get_context('spawn')
    queue = ctx.Queue()
    child = ctx.Process(target=_peak_memory_child, args=(vars(args), variant, queue))
    child.start()
    result = queue.get()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"the memory measurement of {variant!r} failed (exit code {child.exitcode})")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default='vit_base_patch16_224')
    parser.add_argument('--size', type=int, nargs=2, default=(512, 512), metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--variants', nargs='+', default=['trunk', 'feature2pyramid', 'simple'],
                        choices=sorted(VARIANTS))
    parser.add_argument('--mode', choices=('forward', 'train'), default='forward',
                        help='forward pass (eval, no grad) or training step (forward, backward, AdamW)')
    parser.add_argument('--memory', action='store_true',
                        help='also measure the peak memory of one call per variant (fresh processes)')
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, *args.size)
    steps = {v: make_step(build(args.model, v, tuple(args.size)), x, args.mode) for v in args.variants}
    medians = measure(steps, args.repeats, args.warmup)
    del steps
    memory = {v: peak_memory_mib(args, v) for v in args.variants} if args.memory else {}
    base = medians[args.variants[0]]
    first = args.variants[0]
    print(f"{args.model}, input {args.batch}x3x{args.size[0]}x{args.size[1]}, mode {args.mode}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    header = f"{'variant':<16} {'seconds':>8} {'ratio':>6}"
    print(header + (f" {'peak MiB':>9} {'ratio':>6} {'call MiB':>9} {'ratio':>6}" if memory else ''))
    for v, sec in medians.items():
        line = f"{v:<16} {sec:8.3f} {sec / base:6.2f}"
        if memory:
            (peak, call), (peak0, call0) = memory[v], memory[first]
            line += f" {peak:9.1f} {peak / peak0:6.2f} {call:9.1f} {call / call0:6.2f}"
        print(line)
    if args.json:
        result = dict(vars(args), seconds=medians, ratio={v: s / base for v, s in medians.items()})
        if memory:
            result.update(peak_mib={v: m[0] for v, m in memory.items()},
                          call_mib={v: m[1] for v, m in memory.items()},
                          peak_ratio={v: m[0] / memory[first][0] for v, m in memory.items()},
                          call_ratio={v: m[1] / memory[first][1] for v, m in memory.items()})
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)

if __name__ == '__main__':
    main()
