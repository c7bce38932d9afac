"""The command line vitadapter's tools/train.py and tools/test.py share (mmseg's conventions)."""
import argparse
import os

from mmengine.config import DictAction


def runner_argument_parser(description: str) -> argparse.ArgumentParser:
    """The command line tools/train.py and tools/test.py share (mmseg's conventions): the config,
    ``--work-dir``, ``--data-root``, ``--cfg-options``, ``--launcher`` and ``--local-rank``. Parse
    with :func:`parse_runner_args`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='the dir to save logs, checkpoints and metrics')
    parser.add_argument('--data-root', help='data set root for every dataloader of the config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, e.g. train_cfg.max_iters=100')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def parse_runner_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse, and export ``--local-rank`` as ``LOCAL_RANK`` unless the launcher already set it."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args
