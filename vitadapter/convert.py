"""``vitadapter-convert`` (also ``python tools/convert_weights.py``): ViT weights from any supported
source to a timm-layout file.

    vitadapter-convert SRC DST [--to timm|safetensors] [--prefix P] [--model NAME]

SRC: a timm / official DINOv2 / official DINOv3 / MAE / BEiT checkpoint, a Hugging Face ViTModel,
Dinov2Model, Dinov2WithRegistersModel or DINOv3ViTModel (its folder or its .safetensors/.bin
file), an mmseg or mmpretrain VisionTransformer checkpoint (a full segmentor or classifier
checkpoint too: only the backbone is kept), or a trained vitadapter segmentor (mmengine
checkpoint): its ViT (``backbone.trunk.model``) is exported. The layout is detected. Pickled
objects beside the tensors (mmengine's message hub, numpy values) are replaced by inert
placeholders: nothing from the file is ever run.

DST: the timm-layout file. ``--to safetensors`` (default for a .safetensors DST) or ``--to timm``
(a torch.save'd dict, default otherwise). Load it with ``ViTPyramid(NAME, checkpoint=DST)`` or
``timm.create_model(NAME, pretrained=True, pretrained_cfg_overlay=dict(file=DST))``. For DINOv3,
the printed summary says "q/v biases" when NAME must be a ``vit_*_patch16_dinov3_qkvb`` model.

An official ViT-Adapter / BEiT-Adapter UperNet checkpoint (mmseg 0.x segmentor) is recognised too:
it is converted whole (backbone and heads) to an mmseg 1.x segmentor checkpoint for the matching
ViTAdapter config (see :mod:`vitadapter.backbones.vit_adapter_checkpoint`).

--prefix: where the ViT's keys start, when a checkpoint holds several (``teacher.backbone.``).
--model: a timm model name; its own checkpoint filter then finishes the conversion and resizes
to it (needed only for layouts that only timm's filters understand, e.g. OpenAI CLIP).

Python: :func:`vitadapter.weights.convert_checkpoint` and :func:`vitadapter.weights.save_state_dict`;
:func:`vitadapter.backbones.convert_official_file`.
"""
import argparse
import os
import sys
from typing import List, Optional

PROG = 'vitadapter-convert'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description='Convert ViT weights from any supported source to a timm-layout file.',
        epilog='\n\n'.join(__doc__.split('\n\n')[2:5]), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='weights file or Hugging Face model folder')
    parser.add_argument('dst', help='output file (timm layout)')
    parser.add_argument('--to', choices=('timm', 'safetensors'), default=None,
                        help='output format (default: from the DST suffix)')
    parser.add_argument('--prefix', default=None, help="key prefix of the ViT inside SRC")
    parser.add_argument('--model', default=None, help='timm model name to convert and resize for')
    return parser.parse_args(argv)


def _is_official_vit_adapter_file(path: str) -> bool:
    """Whether ``path`` is an official ViT-Adapter segmentor checkpoint (False if unreadable: the
    generic path then reports why)."""
    from .backbones.vit_adapter_checkpoint import is_official_vit_adapter, read_official_checkpoint
    if not os.path.isfile(path) or path.endswith('.safetensors'):
        return False
    try:
        return is_official_vit_adapter(read_official_checkpoint(path))
    except Exception:  # not a readable torch checkpoint: the generic path reports it
        return False


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``); 0 on success, 1 on a checkpoint
    that cannot be converted (the reason is printed to stderr)."""
    args = parse_args(argv)
    from .weights import CheckpointError, convert_checkpoint, save_state_dict
    try:
        if _is_official_vit_adapter_file(args.src):
            from .backbones.vit_adapter_checkpoint import convert_official_file
            print(convert_official_file(args.src, args.dst))
            print(f"wrote an mmseg 1.x segmentor checkpoint to {args.dst} (ViTAdapter + heads)")
            return 0
        model = None
        if args.model:
            import timm
            model = timm.create_model(args.model, pretrained=False, num_classes=0)
        converted = convert_checkpoint(args.src, prefix=args.prefix, model=model,
                                       pickled_objects='placeholder')
    except (CheckpointError, FileNotFoundError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    written = save_state_dict(converted.state_dict, args.dst, to=args.to)
    print(converted)
    print(f"wrote {len(converted.state_dict)} tensors to {args.dst} ({written})")
    return 0


if __name__ == '__main__':
    sys.exit(main())
