"""The ViT every backbone-level variant shares (``--model``, or the config backbone's) and its
shape: what mmseg's ViT of the same shape and ViTAdapter's arch are derived from."""
import argparse
from typing import NamedTuple, Optional, Sequence, Tuple

import torch

from vitadapter import TimmViTTrunk, ViTAdapter

from .catalogue import VARIANTS
from .config import load_config

ADAPTER_ARCH_BY_WIDTH = {192: 'tiny', 384: 'small', 768: 'base', 1024: 'large'}
# options of a config's ViT that change the timm model itself (passed on to timm.create_model)
TIMM_KWARGS = ('depth', 'embed_dim', 'num_heads', 'patch_size')


class TrunkSpec(NamedTuple):
    """What every backbone-level variant shares: the timm model, its chosen blocks, kwargs."""
    model_name: str
    out_indices: Optional[Sequence[int]]
    kwargs: dict


def adapter_arch_model_name(arch: str) -> str:
    """The timm ViT of ViTAdapter's ``arch`` (read from a ViTAdapter built on the meta device)."""
    with torch.device('meta'):
        return ViTAdapter(arch=arch).trunk.model_name


def trunk_spec(args: argparse.Namespace) -> TrunkSpec:
    """The ViT of the backbone-level variants: ``--model``, or the config backbone's (or its
    EoMTSegmentor network's)."""
    if args.config is None:
        return TrunkSpec(args.model, None, {})
    model = load_config(args).model
    if 'network' in model:  # EoMTSegmentor: EoMT / PMT on a timm ViT, no backbone
        network = model['network']
        return TrunkSpec(network['model_name'], None, {k: network[k] for k in TIMM_KWARGS if k in network})
    backbone = model['backbone']
    kind = backbone.get('type')
    if kind == 'ViTPyramid':
        keep = ('norm', 'prefix_tokens', 'stride', 'grid_mapping') + TIMM_KWARGS
        return TrunkSpec(backbone['model_name'], backbone.get('out_indices'),
                         {k: backbone[k] for k in keep if k in backbone})
    if kind in ('ViTAdapter', 'DINOv3Adapter'):
        name = backbone.get('model_name') or adapter_arch_model_name(backbone['arch'])
        return TrunkSpec(name, None, {})
    raise ValueError(f"the config's backbone is {kind!r}; the benchmark's backbone-level variants "
                     f"need a ViTPyramid, ViTAdapter or DINOv3Adapter backbone or an EoMTSegmentor "
                     f"network (its model_name is the ViT)")


def vit_geometry(spec: TrunkSpec) -> dict:
    """Width, depth used, heads, MLP ratio, patch, qkv bias, class token and chosen blocks of the
    timm trunk (built on the meta device), for mmseg's VisionTransformer of the same shape."""
    with torch.device('meta'):
        trunk = TimmViTTrunk(spec.model_name, out_indices=spec.out_indices, **spec.kwargs)
    block = trunk.blocks[0]
    attn, mlp = getattr(block, 'attn', None), getattr(block, 'mlp', None)
    if not (hasattr(attn, 'num_heads') and hasattr(attn, 'qkv') and hasattr(mlp, 'fc1')):
        raise ValueError(f"{spec.model_name!r} has no plain ViT block (attn.qkv, mlp.fc1); the mmseg "
                         f"baselines need a plain ViT of the same shape")
    mlp_ratio = mlp.fc1.out_features / trunk.embed_dim
    if not mlp_ratio.is_integer():  # mmseg computes its hidden width as mlp_ratio * embed_dims
        raise ValueError(f"{spec.model_name!r} has an MLP ratio of {mlp_ratio:g}; mmseg's "
                         f"VisionTransformer takes whole ratios only")
    patch = trunk.patch_size
    if patch[0] != patch[1]:
        raise ValueError(f"mmseg's VisionTransformer needs a square patch, got {patch}")
    return dict(embed_dims=trunk.embed_dim, num_layers=max(trunk.block_indices) + 1,
                num_heads=int(attn.num_heads), mlp_ratio=int(mlp_ratio),
                patch_size=patch[0], qkv_bias=attn.qkv.bias is not None,
                with_cls_token=trunk.has_class_token, out_indices=list(trunk.block_indices))


def adapter_kwargs(spec: TrunkSpec, size: Tuple[int, int], variant: str) -> dict:
    """ViTAdapter's kwargs for the trunk's model: the paper's arch of its width (unless the variant
    sets its own, as ``adapter-extractors``: DINOv3's defaults)."""
    width = vit_geometry(spec)['embed_dims']
    arch = ADAPTER_ARCH_BY_WIDTH.get(width, 'small')
    return {**dict(arch=arch, model_name=spec.model_name, img_size=tuple(size), drop_path_rate=0.0),
            **VARIANTS.get(variant, {})}
