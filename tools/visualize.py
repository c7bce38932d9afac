"""Pictures: PCA of every pyramid level, and a segmentor's prediction with its error map.

    python tools/visualize.py features --model vit_small_patch14_reg4_dinov2 [--checkpoint W.pth]
                                       [--image IMG] [--size H W] --out pca.png
    python tools/visualize.py features --config CONFIG [--checkpoint SEGMENTOR.pth] --out pca.png
    python tools/visualize.py predict --config CONFIG --checkpoint SEGMENTOR.pth --image IMG
                                      [--label LABEL.png] --out prediction.png

``features`` writes [image | PCA of level 0 | level 1 | ...], every panel the image's size.
``predict`` writes [image | prediction overlaid with the data set's palette | error map], the
error map (green right, red wrong, black ignored) only with ``--label``.
"""
import argparse
import sys

import numpy as np
import torch
from PIL import Image

from vitadapter import ViTPyramid
from vitadapter.assets import sample_image_path
from vitadapter.engine import allow_mmengine_checkpoint_globals, prepare_config
from vitadapter.visualization import feature_pca_panel, segmentation_panel

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def read_image(path, size=None) -> np.ndarray:
    image = Image.open(path).convert('RGB')
    if size:
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(image)


def to_tensor(image: np.ndarray, mean, std) -> torch.Tensor:
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def load_segmentor(config: str, checkpoint):
    from mmengine.config import Config
    from mmseg.apis import init_model
    allow_mmengine_checkpoint_globals()
    cfg = prepare_config(Config.fromfile(config))
    cfg.model.backbone.pop('pretrained', None) if cfg.model.backbone.get('type') == 'ViTPyramid' else None
    return init_model(cfg, checkpoint, device='cpu'), cfg


def features(args) -> Image.Image:
    image = read_image(args.image, args.size)
    if args.config:
        model, cfg = load_segmentor(args.config, args.checkpoint)
        backbone = model.backbone
        pre = cfg.model.get('data_preprocessor', {})
        mean, std = pre.get('mean', IMAGENET_MEAN), pre.get('std', IMAGENET_STD)
    else:
        backbone = ViTPyramid(args.model, checkpoint=args.checkpoint, pyramid=args.pyramid)
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    backbone.eval()
    with torch.no_grad():
        levels = backbone(to_tensor(image, mean, std))
    levels = [y[0] if isinstance(y, (list, tuple)) else y for y in levels]
    return feature_pca_panel(image, levels)


def predict(args) -> Image.Image:
    from mmseg.apis import inference_model
    if not (args.config and args.checkpoint):
        raise SystemExit('predict needs --config and --checkpoint')
    model, _ = load_segmentor(args.config, args.checkpoint)
    image = read_image(args.image, args.size)
    result = inference_model(model, image[:, :, ::-1].copy())  # mmseg expects BGR arrays
    prediction = result.pred_sem_seg.data[0].numpy()
    palette = model.dataset_meta['palette']
    label = None
    if args.label:
        label = np.asarray(Image.open(args.label))
        if args.size:
            label = np.asarray(Image.fromarray(label).resize((args.size[1], args.size[0]), Image.NEAREST))
        label = label.copy()
        label[label >= len(palette)] = 255  # void/unlabelled (e.g. CamVid's 11)
    return segmentation_panel(image, prediction, palette, label)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('mode', choices=['features', 'predict'])
    parser.add_argument('--model', default='vit_small_patch16_224', help='timm name (features)')
    parser.add_argument('--config', help='mmseg config (a trained segmentor with --checkpoint)')
    parser.add_argument('--checkpoint', help='weights: a ViT file with --model, a segmentor with --config')
    parser.add_argument('--pyramid', default='simple', choices=['simple', 'feature2pyramid', 'none'])
    parser.add_argument('--image', default=str(sample_image_path()))
    parser.add_argument('--label', help='label map of the image (predict): adds the error map')
    parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'), help='resize the image first')
    parser.add_argument('--out', required=True, help='PNG file to write')
    args = parser.parse_args(argv)
    picture = features(args) if args.mode == 'features' else predict(args)
    picture.save(args.out)
    print(f"wrote {args.out} ({picture.width}x{picture.height})")
    return 0


if __name__ == '__main__':
    sys.exit(main())
