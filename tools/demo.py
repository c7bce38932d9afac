"""Build a ViTPyramid backbone from an mmseg config, run it on a real image, print its pyramid.

    python tools/demo.py                                   # the default config and sample image
    python tools/demo.py --config CONFIG --image street.png --size 512 512
    python tools/demo.py --cfg-options model.backbone.model_name=vit_small_patch14_reg4_dinov2

The backbone is built exactly as mmseg's Runner builds it (config file, custom_imports, the mmseg
registry scope). With no pretrained weights (none can be downloaded here) the features are random
projections, but every shape, stride and channel count is the real one.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from PIL import Image

import vitadapter
from vitadapter.assets import sample_image_path
from vitadapter.summary import pyramid_table, trunk_summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, 'configs', '_base_', 'models', 'upernet_vitpyramid.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='mmseg config with a ViTPyramid backbone')
    parser.add_argument('--image', default=str(sample_image_path()), help='image file (RGB)')
    parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'), default=None,
                        help='resize the image to H x W first (default: keep its size)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config entries, mmseg style: key=value')
    return parser.parse_args(argv)


def load_image(path, size, preprocessor_cfg) -> torch.Tensor:
    """(1, 3, H, W) float tensor normalised like the config's SegDataPreProcessor."""
    image = Image.open(path).convert('RGB')
    if size is not None:
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    mean = torch.tensor(preprocessor_cfg.get('mean', [0.0] * 3)).view(1, 3, 1, 1)
    std = torch.tensor(preprocessor_cfg.get('std', [1.0] * 3)).view(1, 3, 1, 1)
    return (x - mean) / std


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    from mmseg.registry import MODELS
    backbone = MODELS.build(cfg.model.backbone).eval()
    x = load_image(args.image, args.size, cfg.model.get('data_preprocessor', {}))
    print(f"vitadapter {vitadapter.__version__}: {type(backbone).__name__} from {os.path.relpath(args.config)}")
    print(trunk_summary(backbone))
    print(f"image {args.image}: {x.shape[2]}x{x.shape[3]}")
    start = time.perf_counter()
    with torch.no_grad():
        outputs = backbone(x)
    print(f"forward pass: {time.perf_counter() - start:.2f} s on {x.device}\n")
    print(pyramid_table(backbone, x.shape[-2:], outputs))
    heads = [k for k in ('decode_head', 'auxiliary_head') if cfg.model.get(k)]
    for key in heads:
        print(f"\n{key}.in_channels in the config: {cfg.model[key]['in_channels']} "
              f"(feature_info.channels(): {backbone.feature_info.channels()})")
    return 0


if __name__ == '__main__':
    sys.exit(main())
