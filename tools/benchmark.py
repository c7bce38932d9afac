"""Time ViTPyramid variants against the bare trunk, in one process, as ratios.

    python tools/benchmark.py --model vit_base_patch16_224 --size 512 512
    python tools/benchmark.py --model vit_small_patch14_reg4_dinov2 --variants trunk maps input

Variants (each a forward pass in eval mode, no grad, fp32 on the CPU):
  trunk            the timm ViT alone (the chosen blocks, what ViTPyramid's trunk computes)
  feature2pyramid  ViTPyramid with the channel-keeping pyramid, one block per level
  simple           ViTPyramid's default: channel-halving pyramid (C/4, C/2, C, C), one block per level
  vitdet           the ViTDet pyramid (1x1 + 3x3 output convs to 256 channels), one block per level
  vitdet-last      the ViTDet pyramid fed by the last block only, as in ViTDet
  maps / input     patch-14 trunks only: the two grid mappings (default pyramid)
Runs alternate between variants (A, B, C, A, B, C, ...) so that drift in the machine's speed
hits every variant alike; the median of --repeats runs is reported, and its ratio to the first
variant.
"""
import argparse
import json
import statistics
import time

import torch

from vitadapter import ViTPyramid

VARIANTS = {
    'trunk': dict(),
    'feature2pyramid': dict(pyramid='feature2pyramid'),
    'simple': dict(pyramid='simple'),
    'vitdet': dict(pyramid='simple', out_channels=256),
    'vitdet-last': dict(pyramid='simple', out_channels=256, out_indices=(-1,)),
    'maps': dict(grid_mapping='maps'),
    'input': dict(grid_mapping='input'),
}


def build(model_name: str, variant: str, img_size) -> torch.nn.Module:
    model = ViTPyramid(model_name, img_size=img_size, **VARIANTS[variant]).eval()
    return model.trunk if variant == 'trunk' else model


def measure(fns: dict, repeats: int, warmup: int) -> dict:
    """Median seconds per call of each function, alternating between them."""
    times = {name: [] for name in fns}
    with torch.no_grad():
        for _ in range(warmup):
            for fn in fns.values():
                fn()
        for _ in range(repeats):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default='vit_base_patch16_224')
    parser.add_argument('--size', type=int, nargs=2, default=(512, 512), metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--variants', nargs='+', default=['trunk', 'feature2pyramid', 'simple'],
                        choices=sorted(VARIANTS))
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, *args.size)
    models = {v: build(args.model, v, tuple(args.size)) for v in args.variants}
    medians = measure({v: (lambda m=m: m(x)) for v, m in models.items()}, args.repeats, args.warmup)
    base = medians[args.variants[0]]
    print(f"{args.model}, input {args.batch}x3x{args.size[0]}x{args.size[1]}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"{'variant':<16} {'seconds':>8} {'ratio':>6}")
    for v, sec in medians.items():
        print(f"{v:<16} {sec:8.3f} {sec / base:6.2f}")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(vars(args), seconds=medians, ratio={v: s / base for v, s in medians.items()}),
                      f, indent=2)


if __name__ == '__main__':
    main()
