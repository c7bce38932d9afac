"""The main job, end to end: build a ViTPyramid segmentor from an mmseg config, show its pyramid on
a real image, train it on a generated data set, evaluate it and print the mIoU table.

    python tools/demo.py                         # ~1-2 minutes on a 2-core CPU
    python tools/demo.py --iters 100 --work-dir work_dirs/demo
    python tools/demo.py --no-train --config CONFIG [--image IMG] [--cfg-options key=value ...]

Nothing is downloaded: the data set (discs, squares and triangles on noisy backgrounds, 4 classes)
is generated into the work dir (default work_dirs/demo), and the ViT starts from random weights.
The console shows the backbone, the training progress and the results; mmengine's full log (the
config, the environment, every logged line) goes to the log file whose path is printed.
"""
import argparse
import contextlib
import copy
import io
import os
import re
import sys
import time
import warnings

# Third-party notices a newcomer cannot act on, muted in this script only (they stay in every
# other tool): mmcv-lite's missing compiled attention (vitadapter does not use it), two mmseg
# defaults the config does not use, and the fork's import banner.
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')
warnings.filterwarnings('ignore', message='Default ``avg_non_ignore`` is False')  # mmseg's loss
warnings.filterwarnings('ignore', message='The draw is False')  # mmseg's visualization hook
with contextlib.redirect_stdout(io.StringIO()):
    import numpy as np
    import torch
    from mmengine.config import Config, DictAction
    from mmengine.hooks import Hook
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from PIL import Image

    import vitadapter
    from vitadapter.assets import sample_image_path
    from vitadapter.engine import make_shapes_dataset, prepare_config, resolve_head_channels
    from vitadapter.summary import format_table, pyramid_table, trunk_summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, 'configs', 'demo', 'upernet_vit-t16_1xb8-400it_shapes-96x96.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='mmseg config with a ViTPyramid backbone')
    parser.add_argument('--image', default=str(sample_image_path()), help='image for the pyramid table')
    parser.add_argument('--iters', type=int, help='training iterations (default: the config\'s)')
    parser.add_argument('--work-dir', default='work_dirs/demo',
                        help='data set, log and checkpoints (default: work_dirs/demo)')
    parser.add_argument('--no-train', action='store_true', help='only show the backbone\'s pyramid')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config entries, mmseg style: key=value')
    return parser.parse_args(argv)


def load_image(path, preprocessor_cfg) -> torch.Tensor:
    """(1, 3, H, W) float tensor normalised like the config's SegDataPreProcessor."""
    x = torch.from_numpy(np.asarray(Image.open(path).convert('RGB'), dtype=np.float32))
    x = x.permute(2, 0, 1)[None]
    mean = torch.tensor(preprocessor_cfg.get('mean', [0.0] * 3)).view(1, 3, 1, 1)
    std = torch.tensor(preprocessor_cfg.get('std', [1.0] * 3)).view(1, 3, 1, 1)
    return (x - mean) / std


def show_pyramid(cfg: Config, image: str) -> None:
    from mmseg.registry import MODELS
    backbone = MODELS.build(cfg.model.backbone).eval()
    x = load_image(image, cfg.model.get('data_preprocessor', {}))
    start = time.perf_counter()
    with torch.no_grad():
        outputs = backbone(x)
    print(trunk_summary(backbone))
    print(f"image {image}: {x.shape[2]}x{x.shape[3]}, forward {time.perf_counter() - start:.2f} s\n")
    print(pyramid_table(backbone, x.shape[-2:], outputs))
    resolved = copy.deepcopy(cfg.model)
    resolve_head_channels(resolved)  # what the segmentor (ViTEncoderDecoder) does when it is built
    for key in ('decode_head', 'auxiliary_head'):
        if resolved.get(key):
            given = cfg.model[key]['in_channels']
            origin = 'from feature_info' if given == 'auto' else 'checked against feature_info'
            print(f"{key}.in_channels: {resolved[key]['in_channels']} ({origin})")


class ConsoleProgress(Hook):
    """A few progress lines on the console: every ``interval`` iterations and the validation."""
    priority = 'VERY_LOW'

    def __init__(self, stream, interval: int):
        self.stream, self.interval, self.start = stream, interval, time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        done = runner.iter + 1
        if done % self.interval == 0 or done == runner.max_iters:
            loss = float(sum(v.item() for k, v in (outputs or {}).items() if 'loss' in k))
            print(f"  iteration {done:4d}/{runner.max_iters}  loss {loss:.3f}  "
                  f"{time.perf_counter() - self.start:4.0f} s", file=self.stream, flush=True)

    def before_val_epoch(self, runner):
        print('  evaluating on the val images...', file=self.stream, flush=True)


def class_table(log_file: str) -> str:
    """The last per-class IoU table mmseg's IoUMetric wrote to the log."""
    with open(log_file) as f:
        text = f.read()
    tables = re.findall(r'per class results:\n(?:.* - INFO - \n)?((?:[+|].*\n)+)', text)
    return tables[-1].rstrip() if tables else ''


def train_and_evaluate(cfg: Config, work_dir: str, iters) -> dict:
    data_root = make_shapes_dataset(os.path.join(work_dir, 'shapes'))
    print(f"\ngenerated data set: {data_root} (160 train / 40 val images)")
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = data_root
    cfg.work_dir = work_dir
    if iters:  # shorten the schedule proportionally (warm-up included)
        scale = iters / cfg.train_cfg.max_iters
        cfg.train_cfg.update(max_iters=iters, val_interval=iters)
        cfg.default_hooks.checkpoint.interval = iters
        for sched in cfg.param_scheduler:
            sched['begin'] = int(round(sched['begin'] * scale))
            sched['end'] = max(int(round(sched['end'] * scale)), sched['begin'] + 1)
    console = sys.stdout
    start = time.perf_counter()
    # mmengine's logger writes every INFO line (the config dump first) to its log file and to the
    # stream it finds at construction: here, nothing
    with contextlib.redirect_stdout(io.StringIO()):
        runner = Runner.from_cfg(cfg)
    log_file = os.path.join(runner.log_dir, f'{runner.timestamp}.log')
    print(f"training {cfg.train_cfg.max_iters} iterations; mmengine's log: {log_file}")
    runner.register_hook(ConsoleProgress(console, max(1, cfg.train_cfg.max_iters // 8)))
    runner.train()
    print(f"trained {cfg.train_cfg.max_iters} iterations in {time.perf_counter() - start:.0f} s")
    table = class_table(log_file)
    if table:
        print('\n' + table)
    # the loop validated after the last iteration; its metrics are in the message hub
    scalars = runner.message_hub.log_scalars
    metrics = {k[4:]: scalars[k].current() for k in ('val/aAcc', 'val/mIoU', 'val/mAcc') if k in scalars}
    metrics['log'] = log_file
    return metrics


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    prepare_config(cfg)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    print(f"vitadapter {vitadapter.__version__}: {os.path.relpath(args.config)}")
    show_pyramid(cfg, args.image)
    if args.no_train:
        return 0
    metrics = train_and_evaluate(cfg, args.work_dir, args.iters)
    log_file = metrics.pop('log')
    print('\n' + format_table(['metric', 'value'], [[k, f'{float(v):.2f}'] for k, v in metrics.items()]))
    print(f"\nthe whole log: {log_file}; checkpoint: {os.path.join(args.work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
