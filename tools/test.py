"""Evaluate a trained segmentor (mmseg's command-line conventions).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--data-root DIR] [--out DIR]
                         [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]

Prints the per-class IoU table and mIoU through mmengine's logger; ``--out`` also saves the
predicted label maps as PNG files.
"""
import sys

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from vitadapter.engine import (finish_distributed, load_config, parse_runner_args, prepare_config,
                               runner_argument_parser)
from vitadapter.engine.datasets import DataSetNotFound
from vitadapter.engine.resume import is_complete


def parse_args(argv=None):
    parser = runner_argument_parser('Test (evaluate) a segmentor')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='save the predicted label maps (PNG) here')
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    prepare_config(cfg, launcher=args.launcher, data_root=args.data_root)
    cfg.load_from = args.checkpoint
    if args.out:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    # mmseg's convention: a config naming a runner_type (FlexibleRunner for FSDP) gets that runner
    if '://' not in args.checkpoint and not is_complete(args.checkpoint):  # URLs: mmengine fetches them
        print(f"tools/test.py: {args.checkpoint} is missing, incomplete or not a torch checkpoint",
              file=sys.stderr)
        return 2
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    try:
        metrics = runner.test()
    except DataSetNotFound as err:
        print(f"tools/test.py: {err}", file=sys.stderr)
        return 2
    print({k: round(float(v), 2) for k, v in metrics.items()})
    finish_distributed()
    return 0


if __name__ == '__main__':
    sys.exit(main())
