"""Train a segmentor from an mmseg config (mmseg's command-line conventions).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--data-root DIR]
                          [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]
    bash tools/dist_train.sh CONFIG NUM_PROCS [same options]     # DDP with torchrun

``--resume`` alone resumes from the newest complete checkpoint in the work dir (one a killed run
left half-written is skipped, with a warning); ``--resume CKPT`` from that file, if complete.
``--amp`` trains with autocast: fp16 + loss scaling on CUDA, bf16 on a CPU. Without a GPU, DDP
uses the gloo backend. Progress and metrics go through mmengine's logger.
"""
import sys

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from vitadapter.engine import (finish_distributed, load_config, parse_runner_args, prepare_config,
                               runner_argument_parser)
from vitadapter.engine.datasets import DataSetNotFound
from vitadapter.engine.resume import ResumeError, resume_from


def parse_args(argv=None):
    parser = runner_argument_parser('Train a segmentor')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CKPT',
                        help='resume from CKPT, or from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    prepare_config(cfg, launcher=args.launcher, amp=args.amp, data_root=args.data_root)
    try:
        if args.resume:  # the newest complete checkpoint, or the one asked for if complete
            checkpoint = resume_from(cfg.work_dir, args.resume)
            cfg.resume, cfg.load_from = checkpoint is not None, checkpoint
        # mmseg's convention: a config naming a runner_type (FlexibleRunner for FSDP) gets that runner
        runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
        runner.train()
    except (ResumeError, DataSetNotFound) as err:
        print(f"tools/train.py: {err}", file=sys.stderr)
        return 2
    finish_distributed()
    return 0


if __name__ == '__main__':
    sys.exit(main())
