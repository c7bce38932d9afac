"""The printed output: one table per input size, then the profiles."""
import argparse
from typing import List

from .frozen import frozen_lines
from .official_adapter import ratio_lines


def print_table(args: argparse.Namespace, rows: List[dict]) -> None:
    """One table: a title line, a header line, one line per variant (nothing else)."""
    h, w = rows[0]['height'], rows[0]['width']
    name = args.config or args.model
    flags = [f for f, on in ((f"autocast {args.dtype[0]}", args.dtype != ['fp32'] and len(args.dtype) == 1),
                             ('compiled', args.compile == 'on'),
                             ('channels_last', args.channels_last),
                             ('grad checkpointing', args.grad_checkpointing)) if on]
    print(f"{name}, input {args.batch}x3x{h}x{w}, mode {args.mode}, {args.device}, "
          f"{rows[0]['threads']} threads, median of {args.repeats}" + ''.join(f", {f}" for f in flags))
    width = max(16, max(len(r['label']) for r in rows))
    header = f"{'variant':<{width}} {'seconds':>8} {'ratio':>6} {'img/s':>7}"
    show_first = any(r['compiled'] for r in rows) and args.warmup > 0
    header += f" {'first s':>8}" if show_first else ''
    header += f" {'GFLOP':>9} {'ratio':>6} {'GFLOP/s':>8}" if args.flops else ''
    header += f" {'params M':>8}"
    memory = 'peak_mib' in rows[0]
    header += f" {'peak MiB':>9} {'ratio':>6} {'call MiB':>9} {'ratio':>6}" if memory else ''
    print(header)
    for r in rows:
        line = f"{r['label']:<{width}} {r['seconds']:8.3f} {r['ratio']:6.2f} {r['images_per_s']:7.2f}"
        line += f" {r['first_seconds']:8.2f}" if show_first else ''
        line += f" {r['gflop']:9.1f} {r['flop_ratio']:6.2f} {r['gflop_per_s']:8.1f}" if args.flops else ''
        line += f" {r['params'] / 1e6:8.2f}"
        if memory:
            line += f" {r['peak_mib']:9.1f} {r['peak_ratio']:6.2f} {r['call_mib']:9.1f} {r['call_ratio']:6.2f}"
        print(line)
    for line in frozen_lines(rows):
        print(line)
    for r in rows:  # FastUPerHead(fast_path='auto'): what its measurement chose on this machine
        if r.get('measured_choices'):
            print(f"{r['label']}: measured choice " + ', '.join(
                f"{conv} {choice}" for conv, choice in r['measured_choices'].items()))
    for line in rows[0].get('parity', []) + ratio_lines(rows):
        print(line)


def print_profiles(rows: List[dict]) -> None:
    for r in rows:
        if 'profile' in r:
            print(f"\nprofile of {r['label']} at {r['height']}x{r['width']} (one call):\n{r['profile']}")
