"""The command line of ``tools/benchmark.py``: options, their checks, and the run (machine line,
one table per size, profiles, output files)."""
import argparse
import sys
from typing import List

import torch

from .allocator import allocator_record, keep_freed_memory
from .catalogue import (ALL_VARIANTS, CONFIG_VARIANTS, DEFAULT_CONFIG_VARIANTS, DEFAULT_VARIANTS,
                        FROZEN_MEMORY_BATCH, FROZEN_MEMORY_MODEL, FROZEN_MEMORY_VARIANTS)
from .eomt import DEFAULT_TRAIN_MASK_PROBABILITY
from .eomt_figures import EOMT_FIGURES_BATCH, EOMT_FIGURES_LABEL_CLASSES, VIT_B, VIT_S, run_eomt_figures
from .eomt_figures import RUNS as EOMT_FIGURE_RUNS
from .files import write_csv, write_json, write_onnx_json
from .machine import describe, machine_record
from .plot import write_plot
from .runner import run_size
from .settings import DTYPES, settings_of
from .table import print_profiles, print_table


def parse_args(argv=None) -> argparse.Namespace:
    description = (sys.modules[__package__].__doc__ or '').split('\n')[0]
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--model', help='a timm ViT name (default vit_base_patch16_224)')
    source.add_argument('--config', help='an mmseg config file (its backbone and whole model)')
    parser.add_argument('--cfg-options', nargs='+', default=None, metavar='KEY=VALUE',
                        help='override config settings (mmengine syntax)')
    parser.add_argument('--size', type=int, nargs=2, action='append', metavar=('H', 'W'),
                        help='input size; repeat for several (default 512 512)')
    parser.add_argument('--sizes', type=int, nargs='+', metavar='N', help='square input sizes')
    parser.add_argument('--batch', type=int, default=None,
                        help=f'images per call (default 1; {FROZEN_MEMORY_BATCH} with --frozen-memory)')
    parser.add_argument('--variants', nargs='+', default=None, choices=ALL_VARIANTS,
                        help=f'default: {" ".join(DEFAULT_VARIANTS)} '
                             f'(with --config: {" ".join(DEFAULT_CONFIG_VARIANTS)})')
    parser.add_argument('--mode', choices=('forward', 'train'), default=None,
                        help='forward pass (eval, no grad; the default) or training step (forward, '
                             'backward, AdamW; the default with --frozen-memory)')
    parser.add_argument('--segmentor-forward', choices=('tensor', 'predict'), default='tensor',
                        help="segmentors in forward mode: mode='tensor' (logits) or test_step (predict)")
    parser.add_argument('--dtype', nargs='+', default=['fp32'], choices=sorted(DTYPES),
                        help='autocast dtype; several: each variant is timed with each')
    parser.add_argument('--channels-last', action='store_true', help='channels_last memory format')
    parser.add_argument('--compile', nargs='?', const='on', default='off', choices=('off', 'on', 'both'),
                        help='torch.compile the models (both: time eager and compiled, alternating)')
    parser.add_argument('--grad-checkpointing', action='store_true',
                        help='grad checkpointing in every variant that supports it')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    parser.add_argument('--memory', action='store_true',
                        help='also measure the peak memory of one call per variant (fresh processes)')
    parser.add_argument('--frozen-memory', action='store_true',
                        help=f'peak training memory, frozen vs fine-tuned trunk: --mode train --memory, '
                             f'default variants {" ".join(FROZEN_MEMORY_VARIANTS)}, model '
                             f'{FROZEN_MEMORY_MODEL}, batch {FROZEN_MEMORY_BATCH}; prints each frozen '
                             f'variant\'s memory over its fine-tuned one\'s')
    parser.add_argument('--label-classes', type=int, default=None, metavar='N',
                        help="segmentors: the random labels of each image hold N classes (default: "
                             "every class of the model; ADE20K's images hold 10.5 object classes on average)")
    parser.add_argument('--eomt-mask-prob', type=float, default=DEFAULT_TRAIN_MASK_PROBABILITY, metavar='P',
                        help='EoMT training steps: the probability that a query keeps its mask in each '
                             'masked block (default 1: masked attention everywhere, the expensive case '
                             'of the first iterations; 0: annealing done); inference always runs at 0')
    parser.add_argument('--eomt-figures', action='store_true',
                        help=f"EoMT's four figures, one run after another: trunk eomt (forward), "
                             f"uper-segmentor eomt-segmentor (forward, predict), m2f-segmentor "
                             f"eomt-segmentor (train, --memory), on {VIT_S} (the first also on {VIT_B}) "
                             f"unless --model/--config; batch {EOMT_FIGURES_BATCH}, --label-classes "
                             f"{EOMT_FIGURES_LABEL_CLASSES} unless given; prints the figures against "
                             f"their targets")
    parser.add_argument('--keep-freed-memory', action='store_true',
                        help="CPU: glibc's malloc keeps freed memory for reuse, as CUDA's caching "
                             "allocator, jemalloc and tcmalloc do (default: every tensor above 32 MiB "
                             "is page-faulted in again on each call); the machine line says so")
    parser.add_argument('--no-flops', dest='flops', action='store_false', help='do not count FLOPs')
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help='print the N most expensive operators of one call per variant')
    parser.add_argument('--onnx', action='store_true',
                        help='onnxruntime (CPU) vs PyTorch eager latency of the --config segmentor '
                             '(default: the ViT-S UperNet ADE20K config), alternated, one process')
    parser.add_argument('--official-adapter-dir', default=None, metavar='DIR',
                        help='a local copy of the official ViT-Adapter code (github.com/czczup/ViT-Adapter) '
                             'for the official-adapter variant (default: $VITADAPTER_OFFICIAL_ADAPTER_DIR)')
    parser.add_argument('--json', help='write the results here (JSON)')
    parser.add_argument('--csv', help='write the results here (CSV, one row per size and variant)')
    parser.add_argument('--plot', help='write a PNG of time (memory, GFLOP) against input size')
    args = parser.parse_args(argv)
    return check_args(parser, args)


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Defaults that depend on other options, and refusals with the reason."""
    if args.eomt_figures:
        check_eomt_figures(parser, args)
    if args.frozen_memory:
        if args.mode == 'forward':
            parser.error('--frozen-memory measures training steps: drop --mode forward')
        args.mode, args.memory = 'train', True
        if args.config is None and args.model is None:
            args.model = FROZEN_MEMORY_MODEL
        if args.variants is None:
            args.variants = list(FROZEN_MEMORY_VARIANTS)
        if args.batch is None:
            args.batch = FROZEN_MEMORY_BATCH
    args.mode = args.mode or 'forward'
    args.batch = 1 if args.batch is None else args.batch
    if args.config is None and args.model is None and not args.eomt_figures:
        args.model = 'vit_base_patch16_224'
    if args.cfg_options:
        from mmengine.config import DictAction
        namespace = argparse.Namespace()
        DictAction(option_strings=['--cfg-options'], dest='cfg_options')(parser, namespace, args.cfg_options)
        args.cfg_options = namespace.cfg_options
    if args.variants is None:
        args.variants = list(DEFAULT_CONFIG_VARIANTS if args.config else DEFAULT_VARIANTS)
    if args.config is None and any(v in CONFIG_VARIANTS for v in args.variants):
        parser.error(f"variants {[v for v in args.variants if v in CONFIG_VARIANTS]} need --config")
    sizes = [tuple(s) for s in (args.size or [])] + [(n, n) for n in (args.sizes or [])]
    args.size = sizes or [(512, 512)]
    args.sizes = None
    if min(min(s) for s in args.size) < 1 or args.batch < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error('sizes, --batch and --repeats must be positive, --warmup not negative')
    if args.label_classes is not None and args.label_classes < 1:
        parser.error('--label-classes must be positive')
    if not 0 <= args.eomt_mask_prob <= 1:
        parser.error(f'--eomt-mask-prob is a probability (0 to 1), got {args.eomt_mask_prob}')
    if 'official-adapter' in args.variants:
        from .official_adapter import code_dirs, official_dir
        try:
            args.official_adapter_dir = official_dir(args.official_adapter_dir)
            code_dirs(args.official_adapter_dir)
        except (ValueError, FileNotFoundError) as err:
            parser.error(str(err))
    if args.onnx and (args.csv or args.plot):
        parser.error('--onnx writes its one comparison with --json; --csv and --plot are for timing tables')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error('--device cuda but torch sees no GPU')
    if args.compile != 'off' and args.warmup < 1:
        parser.error('--compile needs --warmup 1 or more (the first call compiles)')
    if args.device == 'cpu' and 'fp16' in args.dtype and args.mode == 'train':
        print('note: fp16 training on a CPU runs without loss scaling', file=sys.stderr)
    return args


def check_eomt_figures(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--eomt-figures``: its defaults, and the options it refuses (it sets them per run, or a
    figure needs them)."""
    refused = [flag for flag, given in (
        ('--variants', args.variants is not None), ('--mode', args.mode is not None),
        ('--frozen-memory', args.frozen_memory), ('--no-flops', not args.flops), ('--plot', args.plot),
        ('--onnx', args.onnx), ('--compile both', args.compile == 'both'),
        ('several --dtype', len(args.dtype) > 1)) if given]
    if refused:
        parser.error(f"--eomt-figures sets the variants and modes of its runs and prints the FLOP "
                     f"ratio of figure 1, one setting per variant: drop {', '.join(refused)}")
    args.variants = list(dict.fromkeys(v for run in EOMT_FIGURE_RUNS for v in run.variants))
    args.mode = 'forward+train'  # each run has its own (the rows say which)
    if args.batch is None:
        args.batch = EOMT_FIGURES_BATCH
    if args.label_classes is None:
        args.label_classes = EOMT_FIGURES_LABEL_CLASSES


def run_tables(args: argparse.Namespace) -> List[dict]:
    """One run: every size's table printed; its rows."""
    settings = settings_of(args)
    rows = []
    for size in args.size:
        size_rows = run_size(args, settings, size)
        print_table(args, size_rows)
        rows += size_rows
    return rows


def main(argv=None) -> List[dict]:
    """Run the benchmark of ``argv`` (the command line by default); returns every result row."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = False
    if args.keep_freed_memory:
        try:
            keep_freed_memory()
        except RuntimeError as err:
            raise SystemExit(f'error: {err}') from None
        kept = True
    machine = machine_record(args.device, allocator_record(kept))
    print(describe(machine))
    extra = {}
    if args.onnx:
        from .onnx import run_onnx_comparison
        rows = [run_onnx_comparison(args)]
    elif args.eomt_figures:
        rows, extra['figures'] = run_eomt_figures(args, run_tables)
    else:
        rows = run_tables(args)
    if not args.onnx:
        print_profiles(rows)
    if args.json and args.onnx:
        write_onnx_json(args.json, args, rows[0], machine)
    elif args.json:
        write_json(args.json, args, rows, machine, extra)
    if args.csv:
        write_csv(args.csv, rows)
    if args.plot:
        write_plot(args.plot, args, rows)
    return rows
