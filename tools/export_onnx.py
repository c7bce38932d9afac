"""Export a backbone or a whole segmentor to ONNX with dynamic batch, height and width, then
check the file with onnxruntime against PyTorch at another size.

    # a backbone from a timm model name (random weights unless --checkpoint / --pretrained)
    python tools/export_onnx.py --model vit_small_patch16_224 --backbone ViTPyramid OUT.onnx
    python tools/export_onnx.py --model deit_small_patch16_224 --backbone ViTAdapter OUT.onnx
    # the backbone of an mmseg config
    python tools/export_onnx.py --config CONFIG --backbone-only OUT.onnx
    # a whole segmentor: pixels (float, 0-255, BGR as mmseg loads them) -> logits or label map
    python tools/export_onnx.py --config CONFIG --checkpoint CKPT --output logits|labels OUT.onnx

Options: --size H W (the trace's example size, default 512 512), --check-size H W (the size the
onnxruntime check runs at, default: the export size minus 19 rows and 45 columns, so neither a
multiple of the patch), --no-check, --opset. Prints the max absolute error and the max error
relative to the output's largest magnitude.
"""
import argparse
import sys

import torch


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export a vitadapter backbone or segmentor to ONNX')
    parser.add_argument('out', help='the .onnx file to write')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--model', help='timm model name (a backbone with --backbone)')
    source.add_argument('--config', help='an mmseg config (the whole segmentor, or --backbone-only)')
    parser.add_argument('--backbone', default='ViTPyramid', choices=['ViTPyramid', 'ViTAdapter', 'DINOv3Adapter'],
                        help='with --model: which backbone (default ViTPyramid)')
    parser.add_argument('--checkpoint', help='weights: any supported backbone file with --model, '
                                             'an mmseg checkpoint with --config')
    parser.add_argument('--pretrained', action='store_true', help="with --model: timm's weights")
    parser.add_argument('--backbone-only', action='store_true', help="with --config: the backbone only")
    parser.add_argument('--output', default='logits', choices=['logits', 'labels'],
                        help='segmentor output: logits (B, K, H, W) or labels (B, H, W) int64')
    parser.add_argument('--size', type=int, nargs=2, default=(512, 512), metavar=('H', 'W'))
    parser.add_argument('--check-size', type=int, nargs=2, metavar=('H', 'W'))
    parser.add_argument('--no-check', action='store_true', help='skip the onnxruntime check')
    parser.add_argument('--opset', type=int, default=18)
    return parser.parse_args(argv)


def build_model(args) -> torch.nn.Module:
    if args.model:
        import vitadapter
        cls = getattr(vitadapter, args.backbone)
        return cls(model_name=args.model, pretrained=args.pretrained, checkpoint=args.checkpoint)
    from mmseg.apis import init_model

    import vitadapter  # noqa: F401  (registers the backbones, heads and segmentor)
    from vitadapter.engine.models.onnx_segmentor import SegmentorForExport
    segmentor = init_model(args.config, args.checkpoint, device='cpu')
    if args.backbone_only:
        return segmentor.backbone
    if segmentor.test_cfg.get('mode', 'whole') != 'whole':
        print(f"note: the config's test_cfg mode={segmentor.test_cfg.get('mode')!r}; the export runs "
              f"whole-image inference (one pass at the input size)", file=sys.stderr)
    return SegmentorForExport(segmentor, args.output)


def main(argv=None) -> int:
    args = parse_args(argv)
    from vitadapter.export import check_onnx, export_onnx
    model = build_model(args).eval()
    size = tuple(args.size)
    path = export_onnx(model, args.out, image_size=size, opset=args.opset)
    print(f"wrote {path} (dynamic batch, height, width; traced at {size[0]}x{size[1]})")
    if args.no_check:
        return 0
    check = tuple(args.check_size) if args.check_size else (size[0] - 19, size[1] - 45)
    scale = 255.0 if not args.model and not args.backbone_only else 1.0
    images = torch.rand(1, 3, *check) * scale if scale != 1.0 else torch.randn(1, 3, *check)
    for report in check_onnx(path, model, [images]):
        print(f"onnxruntime vs PyTorch at {check[0]}x{check[1]}: max abs error "
              f"{max(report.max_abs):.3g}, max relative error (to the output's largest "
              f"magnitude) {max(report.max_rel):.3g}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
