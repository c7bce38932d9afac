"""Evaluate a trained segmentor (mmseg's command-line conventions).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--data-root DIR] [--out DIR]
                         [--cfg-options key=value ...] [--launcher none|pytorch|slurm]

Prints the per-class IoU table and mIoU through mmengine's logger; ``--out`` also saves the
predicted label maps as PNG files.
"""
import argparse
import os
import sys

from mmengine.config import DictAction
from mmengine.runner import Runner

from vitadapter.engine import finish_distributed, load_config, prepare_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--data-root', help='data set root for every dataloader of the config')
    parser.add_argument('--out', help='save the predicted label maps (PNG) here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    prepare_config(cfg, launcher=args.launcher, data_root=args.data_root)
    cfg.load_from = args.checkpoint
    if args.out:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    print({k: round(float(v), 2) for k, v in metrics.items()})
    finish_distributed()
    return 0


if __name__ == '__main__':
    sys.exit(main())
