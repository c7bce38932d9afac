"""``vitadapter-info`` (also ``python tools/inspect.py``): what a backbone is and what it outputs.

    vitadapter-info vit_base_patch16_224 [--size 512 512] [--out-indices 2 5 8 11] [--pyramid simple]
    vitadapter-info configs/vitpyramid/upernet_vit-b16-deit_160k_ade20k-512x512.py
    vitadapter-info --list '*dinov2*'

For a timm model name or an mmseg config: the trunk (family, depth, width, patch, prefix tokens),
the chosen blocks, the pyramid levels (name, channels, stride, output size for ``--size``),
parameters per part and the ``in_channels`` a head should use. Models are built on the meta
device: no memory is used and nothing is downloaded.
"""
import argparse
import importlib.util
import os
import sys
from typing import List, Optional

import torch

from .meta_build import build_structure

from .summary import format_table

# timm modules whose models are plain ViTs with forward_intermediates over a token sequence
VIT_MODULES = ('timm.models.vision_transformer', 'timm.models.deit', 'timm.models.eva',
               'timm.models.beit')


def supported_models(pattern: str = '*') -> List[str]:
    """timm model names ViTPyramid supports (plain ViT families), filtered by a glob pattern."""
    import timm
    from timm.models import model_entrypoint
    names = timm.list_models(pattern if any(c in pattern for c in '*?[') else f'*{pattern}*')
    return [n for n in names if model_entrypoint(n).__module__ in VIT_MODULES]


def count_params(module: Optional[torch.nn.Module]) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def build_backbone_and_cfg(target: str, args):
    """(backbone built on the meta device where timm allows it, model config or None) for a model
    name or config."""
    from .backbones import ViTPyramid
    if target.endswith('.py') and os.path.isfile(target):
        if importlib.util.find_spec('mmseg') is None:
            raise SystemExit(f"vitadapter-info: {target} is an mmseg config, which needs the mmseg extra "
                             f"(pip install 'vitadapter[mmseg]'); give a timm model name to inspect a "
                             f"backbone without it")
        from mmengine.config import Config

        from .engine import prepare_config, resolve_head_channels
        cfg = Config.fromfile(target)
        prepare_config(cfg)
        resolve_head_channels(cfg.model)  # what ViTEncoderDecoder does when it builds the heads
        backbone_cfg = dict(cfg.model.backbone)
        backbone_cfg.update(pretrained=False, checkpoint=None)
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS
        init_default_scope('mmseg')
        return build_structure(lambda: MODELS.build(backbone_cfg)), cfg.model
    kwargs = dict(pyramid=args.pyramid, out_channels=args.out_channels)
    if args.out_indices:
        kwargs['out_indices'] = args.out_indices[0] if len(args.out_indices) == 1 and args.last else \
            tuple(args.out_indices)
    return build_structure(lambda: ViTPyramid(target, **kwargs)), None


def describe(target: str, args) -> str:
    backbone, model_cfg = build_backbone_and_cfg(target, args)
    trunk = backbone.trunk
    vit = trunk.model
    size = tuple(args.size)
    lines = [
        f"{target}",
        f"trunk: {type(vit).__name__} ({type(vit).__module__.rsplit('.', 1)[-1]}) "
        f"{trunk.model_name}: depth {trunk.num_blocks}, width {trunk.embed_dim}, "
        f"patch {trunk.patch_size[0]}, prefix tokens {trunk.num_prefix_tokens} "
        f"(class token {'yes' if trunk.has_class_token else 'no'}, registers {trunk.num_register_tokens})",
        f"blocks used: {tuple(trunk.block_indices)} (final norm on them: {trunk.norm}); "
        f"patch grid mapped to stride {trunk.stride[0]} by '{trunk.grid_mapping}'",
        "",
    ]
    names = list(backbone.output_shape())
    rows = [[n, c, s, b, '%dx%d' % hw] for n, c, s, b, hw in zip(
        names, backbone.feature_info.channels(), backbone.feature_info.reduction(),
        backbone.level_blocks, backbone.output_sizes(size))]
    lines.append(format_table(['level', 'channels', 'stride', 'block', 'size at %dx%d' % size], rows))
    parts = [['backbone.trunk (ViT)', count_params(trunk)], ['backbone.neck (pyramid)', count_params(backbone.neck)]]
    if model_cfg is not None:
        from mmseg.registry import MODELS
        with torch.device('meta'):
            for key in ('neck', 'decode_head', 'auxiliary_head'):
                if model_cfg.get(key):
                    parts.append([key, count_params(MODELS.build(model_cfg[key]))])
    parts.append(['total', sum(p[1] for p in parts)])
    lines += ['', format_table(['part', 'parameters'], [[p, f'{n / 1e6:.2f} M'] for p, n in parts])]
    channels = backbone.feature_info.channels()
    lines += ['', f"head in_channels: {channels} (UPerHead/FPN, in_index={list(range(len(channels)))}); "
                  f"auxiliary FCNHead at in_index=2: {channels[2] if len(channels) > 2 else channels[-1]}"
                  f" -- or in_channels='auto' under model type='ViTEncoderDecoder'"]
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='vitadapter-info', description=__doc__.split('\n')[0])
    parser.add_argument('target', nargs='?', help='timm model name or mmseg config file')
    parser.add_argument('--list', nargs='?', const='*', metavar='PATTERN',
                        help='list the supported timm models (glob or substring)')
    parser.add_argument('--size', type=int, nargs=2, default=(512, 512), metavar=('H', 'W'))
    parser.add_argument('--out-indices', type=int, nargs='+', help='blocks (model names only)')
    parser.add_argument('--last', action='store_true', help='--out-indices N means the last N blocks')
    parser.add_argument('--pyramid', default='simple', choices=['simple', 'feature2pyramid', 'none'])
    parser.add_argument('--out-channels', type=int, help='channels of every level (pyramid simple)')
    args = parser.parse_args(argv)
    if not args.target and args.list is None:
        parser.error('give a model name or config, or --list')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list is not None:
        names = supported_models(args.list)
        print('\n'.join(names))
        print(f"{len(names)} supported models match {args.list!r}", file=sys.stderr)
        return 0
    try:
        print(describe(args.target, args))
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"vitadapter-info: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
