"""Convert ViT weights from any supported source to a timm-layout file.

    python tools/convert_weights.py SRC DST [--to timm|safetensors] [--prefix P] [--model NAME]

SRC: a timm / official DINOv2 / MAE / BEiT checkpoint, a Hugging Face ViTModel, Dinov2Model or
Dinov2WithRegistersModel (its folder or its .safetensors/.bin file), an mmseg or mmpretrain
VisionTransformer checkpoint (a full segmentor or classifier checkpoint too: only the backbone is
kept), or a trained vitadapter segmentor (mmengine checkpoint): its ViT (``backbone.trunk.model``)
is exported. The layout is detected. Pickled objects beside the tensors (mmengine's message hub,
numpy values) are replaced by inert placeholders: nothing from the file is ever run.

DST: the timm-layout file. ``--to safetensors`` (default for a .safetensors DST) or ``--to timm``
(a torch.save'd dict, default otherwise). Load it with ``ViTPyramid(NAME, checkpoint=DST)`` or
``timm.create_model(NAME, pretrained=True, pretrained_cfg_overlay=dict(file=DST))``.

An official ViT-Adapter / BEiT-Adapter UperNet checkpoint (mmseg 0.x segmentor) is recognised too:
it is converted whole (backbone and heads) to an mmseg 1.x segmentor checkpoint for the matching
config in configs/vit_adapter/ (``python tools/test.py CONFIG DST``).

--prefix: where the ViT's keys start, when a checkpoint holds several (``teacher.backbone.``).
--model: a timm model name; its own checkpoint filter then finishes the conversion and resizes
to it (needed only for layouts that only timm's filters understand, e.g. OpenAI CLIP).
"""
import argparse
import os
import sys

try:
    import vitadapter  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import timm  # noqa: E402

from vitadapter.weights import (CheckpointError, convert_checkpoint, convert_official_file,  # noqa: E402
                                is_official_vit_adapter, read_official_checkpoint, save_state_dict)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='weights file or Hugging Face model folder')
    parser.add_argument('dst', help='output file (timm layout)')
    parser.add_argument('--to', choices=('timm', 'safetensors'), default=None,
                        help='output format (default: from the DST suffix)')
    parser.add_argument('--prefix', default=None, help="key prefix of the ViT inside SRC")
    parser.add_argument('--model', default=None, help='timm model name to convert and resize for')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if os.path.isfile(args.src) and not args.src.endswith('.safetensors'):
        try:
            official = is_official_vit_adapter(read_official_checkpoint(args.src))
        except Exception:  # not a readable torch checkpoint: the generic path reports it
            official = False
        if official:
            print(convert_official_file(args.src, args.dst))
            print(f"wrote an mmseg 1.x segmentor checkpoint to {args.dst} (ViTAdapter + heads)")
            return 0
    model = None
    if args.model:
        model = timm.create_model(args.model, pretrained=False, num_classes=0)
    try:
        converted = convert_checkpoint(args.src, prefix=args.prefix, model=model,
                                       pickled_objects='placeholder')
    except (CheckpointError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    written = save_state_dict(converted.state_dict, args.dst, to=args.to)
    print(converted)
    print(f"wrote {len(converted.state_dict)} tensors to {args.dst} ({written})")
    return 0


if __name__ == '__main__':
    sys.exit(main())
