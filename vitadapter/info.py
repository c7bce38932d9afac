"""``vitadapter-info`` (also ``python tools/info.py``): what a backbone is and what it outputs.

    vitadapter-info vit_base_patch16_224 [--size 512 512] [--out-indices 2 5 8 11] [--pyramid simple]
    vitadapter-info configs/vitpyramid/upernet_vit-b16-deit_8xb2-160k_ade20k-512x512.py
    vitadapter-info --list '*dinov2*'

For a timm model name or an mmseg/mmdet config: the trunk (family, depth, width, patch, prefix
tokens) and the chosen blocks of a vitadapter backbone, its levels (name, channels, stride, block,
output size for ``--size``) from its ``feature_info``, parameters per part, and the ``in_channels``
a head should use. Any other registered backbone (mmseg's own ViT, say) is described by the shapes
of its outputs. Models are built on the meta device where they allow it: no memory is used and
nothing is downloaded. Expected errors (a missing extra, a config this stack cannot build) are one
line on standard error and exit status 2.
"""
import argparse
import copy
import importlib.util
import os
import sys
from typing import List, Optional, Sequence, Tuple

import torch

from .meta_build import build_structure
from .summary import format_table

# timm modules whose models are plain ViTs with forward_intermediates over a token sequence
VIT_MODULES = ('vision_transformer', 'deit', 'eva', 'beit')


def supported_models(pattern: str = '*') -> List[str]:
    """timm model names the trunk supports (plain ViT families), filtered by a glob pattern."""
    import timm
    pattern = pattern if any(c in pattern for c in '*?[') else f'*{pattern}*'
    return sorted(timm.list_models(pattern, module=list(VIT_MODULES)))


def count_params(module: Optional[torch.nn.Module]) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def _without_weights(backbone_cfg: dict) -> dict:
    """The backbone config with its weight loading switched off (only the keys it has)."""
    cfg = copy.deepcopy(dict(backbone_cfg))
    if 'pretrained' in cfg:
        cfg['pretrained'] = False if isinstance(cfg['pretrained'], bool) else None
    if 'checkpoint' in cfg:
        cfg['checkpoint'] = None
    if isinstance(cfg.get('init_cfg'), dict) and cfg['init_cfg'].get('type') == 'Pretrained':
        cfg['init_cfg'] = None
    return cfg


def _registry(scope: str):
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    return MODELS


def build_from_config(path: str):
    """(backbone built on the meta device where it allows it, model config, scope) of a config."""
    if importlib.util.find_spec('mmseg') is None:
        raise ValueError(f"{path} is an mmseg config, which needs the mmseg extra (pip install "
                         f"'vitadapter[mmseg]'); give a timm model name to inspect a backbone without it")
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from .engine import prepare_config, resolve_head_channels
    cfg = Config.fromfile(path)
    scope = cfg.get('default_scope', 'mmseg')
    init_default_scope(scope)
    if scope == 'mmseg':
        prepare_config(cfg)
        resolve_head_channels(cfg.model)  # what ViTEncoderDecoder does when it builds the heads
    if cfg.model.get('type') == 'EoMTSegmentor':  # no backbone: the network is the model
        from .engine.models.eomt_segmentor import NETWORKS
        network = _without_weights(cfg.model.network)
        kind = network.pop('type', 'EoMT')
        return build_structure(lambda: NETWORKS[kind](**network)), None, scope
    models = _registry(scope)
    backbone_cfg = _without_weights(cfg.model.backbone)
    return build_structure(lambda: models.build(backbone_cfg)), cfg.model, scope


def build_from_name(target: str, args):
    from .backbones import ViTPyramid
    kwargs = dict(pyramid=args.pyramid, out_channels=args.out_channels)
    if args.out_indices:
        kwargs['out_indices'] = args.out_indices[0] if len(args.out_indices) == 1 and args.last else \
            tuple(args.out_indices)
    return build_structure(lambda: ViTPyramid(target, **kwargs))


def output_shapes(backbone: torch.nn.Module, size: Sequence[int]) -> List[Tuple[int, ...]]:
    """The shapes of what a backbone returns for one image of ``size`` (run on the meta device
    where its parameters are there, else on a zero image)."""
    device = next((p.device for p in backbone.parameters()), torch.device('cpu'))
    backbone.eval()  # (mmseg's VisionTransformer.train returns None, not the module)
    with torch.no_grad():
        out = backbone(torch.zeros(1, 3, *size, device=device))
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [tuple((o[0] if isinstance(o, (list, tuple)) else o).shape) for o in outs]


def trunk_lines(trunk) -> List[str]:
    return [
        f"trunk: {trunk.family} {trunk.model_name}: depth {trunk.num_blocks}, width {trunk.embed_dim}, "
        f"patch {trunk.patch_size[0]}, prefix tokens {trunk.num_prefix_tokens} "
        f"(class token {'yes' if trunk.has_class_token else 'no'}, registers {trunk.num_register_tokens})",
        f"blocks used: {tuple(trunk.block_indices)} (final norm on them: {trunk.norm}); "
        f"patch grid mapped to stride {trunk.stride[0]} by '{trunk.grid_mapping}'",
    ]


def describe(target: str, args) -> str:
    from .backbones import Backbone
    from .models import MaskTransformer
    size = tuple(args.size)
    if target.endswith('.py') or os.path.sep in target:
        if not os.path.isfile(target):
            raise FileNotFoundError(f"no config file {target!r}")
        backbone, model_cfg, scope = build_from_config(target)
    else:
        backbone, model_cfg, scope = build_from_name(target, args), None, None
    lines = [target]
    if isinstance(backbone, MaskTransformer):
        return '\n'.join(lines + mask_transformer_lines(backbone, size))
    if isinstance(backbone, Backbone):
        lines += trunk_lines(backbone.trunk) + ['']
        rows = [[n, c, s, b, '%dx%d' % hw] for n, c, s, b, hw in zip(
            backbone.output_shape(), backbone.feature_info.channels(), backbone.feature_info.reduction(),
            backbone.level_blocks, backbone.output_sizes(size))]
        lines.append(format_table(['level', 'channels', 'stride', 'block', 'size at %dx%d' % size], rows))
        parts = [[f'backbone.{name}', count_params(m)] for name, m in backbone.describe_parts()]
        channels = list(backbone.feature_info.channels())
    else:
        lines += [f"backbone: {type(backbone).__name__} ({type(backbone).__module__}), not a vitadapter "
                  f"backbone: its outputs for one {size[0]}x{size[1]} image", '']
        shapes = output_shapes(backbone, size)
        lines.append(format_table(['output', 'shape'], [[i, 'x'.join(map(str, s))] for i, s in enumerate(shapes)]))
        parts = [['backbone', count_params(backbone)]]
        channels = [s[1] for s in shapes]
    if model_cfg is not None:
        models = _registry(scope)
        with torch.device('meta'):
            for key in ('neck', 'decode_head', 'auxiliary_head', 'rpn_head', 'roi_head'):
                if isinstance(model_cfg.get(key), dict):
                    parts.append([key, count_params(build_structure(lambda: models.build(model_cfg[key])))])
    parts.append(['total', sum(p[1] for p in parts)])
    lines += ['', format_table(['part', 'parameters'], [[p, f'{n / 1e6:.2f} M'] for p, n in parts])]
    if isinstance(backbone, Backbone):
        lines += ['', f"head in_channels: {channels} (UPerHead/FPN, in_index={list(range(len(channels)))}); "
                      f"auxiliary FCNHead at in_index=2: {channels[2] if len(channels) > 2 else channels[-1]}"
                      f" -- or in_channels='auto' under model type='ViTEncoderDecoder'"]
    return '\n'.join(lines)


def mask_transformer_lines(model, size) -> List[str]:
    """EoMT / PMT: the trunk, where the queries run, what is predicted, parameters per part."""
    trunk = model.trunk
    lines = trunk_lines(trunk)
    from .models import EoMT
    where = (f"the last {model.num_blocks} of the trunk's blocks" if isinstance(model, EoMT) else
             f"a decoder of {model.num_blocks} layers")
    padded = model.padded_size(size)
    grid = (padded[0] // trunk.patch_size[0], padded[1] // trunk.patch_size[1])
    scale = 2 ** len(model.head.upscale)
    lines += ['', f"{type(model).__name__}: {model.num_queries} queries in {where}, {model.num_classes} "
                  f"classes (+ no object); masks at {grid[0] * scale}x{grid[1] * scale} (stride "
                  f"{trunk.patch_size[0] // scale}) for {size[0]}x{size[1]}, one prediction per "
                  f"masked block while training + the final one"]
    parts = [[f'network.{name}', count_params(module)] for name, module in model.named_children()]
    parts.append(['total', sum(p[1] for p in parts)])
    lines += ['', format_table(['part', 'parameters'], [[p, f'{n / 1e6:.2f} M'] for p, n in parts])]
    return lines


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


def expected_errors() -> tuple:
    """What a wrong name, a missing file, a missing extra or a stack that cannot build a config
    raise: printed as one line, not as a traceback."""
    errors = [ValueError, TypeError, FileNotFoundError, KeyError]
    if importlib.util.find_spec('mmseg') is not None:
        from .engine.detection_stack import DetectionStackError
        errors.append(DetectionStackError)
    return tuple(errors)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list is not None:
        names = supported_models(args.list)
        print('\n'.join(names))
        print(f"{len(names)} supported models match {args.list!r}", file=sys.stderr)
        return 0
    try:
        print(describe(args.target, args))
    except expected_errors() as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"vitadapter-info: {type(err).__name__}: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
