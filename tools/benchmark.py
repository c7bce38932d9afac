"""Time, count and measure ViTPyramid / ViTAdapter against timm's and mmseg's ViTs, in one process.

    python tools/benchmark.py --model vit_base_patch16_224 --size 512 512
    python tools/benchmark.py --model vit_small_patch14_reg4_dinov2 --variants trunk maps input
    python tools/benchmark.py --model vit_small_patch16_224 --variants simple adapter --mode train --memory
    python tools/benchmark.py --model vit_base_patch16_224 --variants trunk simple mmseg-f2p mmseg-mln
    python tools/benchmark.py --config configs/vitpyramid/upernet_vit-s16-augreg_160k_ade20k-512x512.py \\
        --variants mmseg-f2p-segmentor segmentor --mode train --batch 2 --memory
    python tools/benchmark.py --model vit_base_patch16_224 --variants simple --dtype fp32 bf16 --compile both
    python tools/benchmark.py --model vit_small_patch16_224 --sizes 256 384 512 --json r.json --csv r.csv --plot r.png

Input: a timm model name (``--model``) or an mmseg config (``--config``; its backbone's
``model_name`` is the ViT of the model-level variants, its model is the whole segmentor).

Variants, backbone level (the ViT is ``--model``, or the config backbone's):
  trunk            the timm ViT alone (the chosen blocks, what ViTPyramid's trunk computes)
  feature2pyramid  ViTPyramid with the channel-keeping pyramid, one block per level
  simple           ViTPyramid's default: channel-halving pyramid (C/4, C/2, C, C), one block per level
  simple-cp        the same with grad checkpointing of the trunk's blocks
  vitdet           the ViTDet pyramid (1x1 + 3x3 output convs to 256 channels), one block per level
  vitdet-last      the ViTDet pyramid fed by the last block only, as in ViTDet
  maps / input     patch-14 trunks only: the two grid mappings (default pyramid)
  adapter          ViTAdapter with the paper's settings for the trunk's width (192: Tiny, 384: Small,
                   768: Base, 1024: Large; other widths: Small's), 4 interactions
  adapter-cp       the same with grad checkpointing of blocks, injectors and extractors
  trunk-f2p        the timm trunk + mmseg's ``Feature2Pyramid`` (BN)
  trunk-mln        the timm trunk + mmseg's ``MultiLevelNeck`` (C channels at every level)
  mmseg-vit        mmseg's own ``VisionTransformer`` with the trunk's width, depth (up to the last
                   chosen block), heads, MLP ratio, patch, class token and chosen blocks
  mmseg-f2p        mmseg-vit + ``Feature2Pyramid``
  mmseg-mln        mmseg-vit + ``MultiLevelNeck``
Variants that need ``--config``:
  backbone         the config's backbone as configured (stochastic depth off)
  segmentor        the config's whole model (mmseg ``EncoderDecoder``, its heads and losses)
  stock-head-segmentor
                   the config's model with mmseg's own heads in place of vitadapter's equivalent
                   ones (``FastUPerHead`` -> ``UPerHead``: same parameters, same function)
  mmseg-f2p-segmentor / mmseg-mln-segmentor
                   mmseg's native segmentor: the config's model with its backbone replaced by
                   mmseg-f2p / mmseg-mln and mmseg's own heads (same head widths; head in_channels
                   set to the new backbone's)
  adapter-segmentor
                   the config's model with its backbone replaced by ViTAdapter (same heads)

Modes:
  forward  (default) a forward pass in eval mode without autograd; a segmentor runs its data
           preprocessor and ``mode='tensor'`` (``--segmentor-forward predict``: ``test_step``,
           i.e. prediction, resizing and argmax);
  train    one training step in train mode. Backbone variants: forward, backward of the mean
           square of every output level (a stand-in for the heads, the same for all variants),
           AdamW step. Segmentors: mmseg's ``train_step`` on random images and random labels
           (real losses of every head, backward, AdamW step). Stochastic depth is off in every
           variant so that they do the same work.
Runs alternate between variants (A, B, C, A, B, C, ...) so that drift in the machine's speed hits
every variant alike; the median of --repeats runs is reported, and its ratio to the first variant.
Several ``--dtype`` values, or ``--compile both``, multiply the variants: ``simple[bf16]``,
``simple[compiled]`` are then timed alternately with ``simple``.

Options: ``--dtype fp32|bf16|fp16`` (autocast; fp16 training on a GPU uses loss scaling),
``--channels-last``, ``--compile`` (``torch.compile`` of the model, of a segmentor's backbone,
neck and heads; the first warm-up call compiles, its time is reported as ``first s``),
``--grad-checkpointing`` (every variant that can: ViTPyramid, ViTAdapter, mmseg's ViT ``with_cp``),
``--batch``, ``--device cpu|cuda``, ``--size H W`` (repeatable) or ``--sizes N [N ...]`` (squares).

Columns: seconds (median), ratio (to the first variant), img/s (batch / seconds), GFLOP (of the
measured call, forward or whole training step, counted by ``torch.utils.flop_counter``, one
multiply-add = 2 FLOPs), GFLOP/s achieved, params M (all parameters).
FLOPs: torch's counter counts matmuls, convolutions (transposed ones too) and the fused attention
kernels of CUDA; it does not know the CPU's fused attention (``_scaled_dot_product_flash_attention
_for_cpu`` and its backward), so this tool adds them with torch's own attention formulas.
Not counted: element-wise work (norms, activations, softmax outside the fused kernels),
interpolation, pooling, and ViTAdapter's deformable-attention sampling (its linear layers are).

--memory: peak memory per variant, each in a fresh process. On a CPU from the kernel's resident-set
counters (``VmRSS``, and ``VmHWM``, the peak, reset through ``/proc/self/clear_refs`` before the
measured call; Linux only); on a GPU from ``torch.cuda.max_memory_allocated``. After the model is
built and one warm-up call made (AdamW's state exists), gradients are freed and one call is measured:
  peak MiB   the process's peak during the call minus its memory before the model was built:
             all the model costs at its peak (weights, optimizer state, gradients, activations);
  call MiB   the peak during the call minus the memory just before it: activations,
             gradients and temporaries of the call.
glibc is told to return every block of 64 KiB or more to the system when freed
(``MALLOC_MMAP_THRESHOLD_``), so freed tensors do not hide in malloc's cache.

Output: one table per input size; ``--json`` / ``--csv`` files (one row per size and variant);
``--plot out.png``: time (and peak memory and GFLOP when measured) against the input size.
``--profile N``: after timing, the N most expensive operators of one call of every variant
(torch.profiler, self time), to see where the time goes.
"""
import argparse
import contextlib
import copy
import csv
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
import traceback
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from vitadapter import ViTAdapter, ViTPyramid
from vitadapter.trunk import TimmViTTrunk, TrunkOutput

VARIANTS = {
    'trunk': dict(),
    'feature2pyramid': dict(pyramid='feature2pyramid'),
    'simple': dict(pyramid='simple'),
    'simple-cp': dict(pyramid='simple', grad_checkpointing=True),
    'vitdet': dict(pyramid='simple', out_channels=256),
    'vitdet-last': dict(pyramid='simple', out_channels=256, out_indices=(-1,)),
    'maps': dict(grid_mapping='maps'),
    'input': dict(grid_mapping='input'),
    'adapter': dict(),
    'adapter-cp': dict(grad_checkpointing=True),
}
MMSEG_NECKS = {'f2p': 'Feature2Pyramid', 'mln': 'MultiLevelNeck'}
MMSEG_VARIANTS = ('trunk-f2p', 'trunk-mln', 'mmseg-vit', 'mmseg-f2p', 'mmseg-mln')
CONFIG_VARIANTS = ('backbone', 'segmentor', 'stock-head-segmentor', 'mmseg-f2p-segmentor',
                   'mmseg-mln-segmentor', 'adapter-segmentor')
# vitadapter's heads -> the mmseg heads computing the same function (for the native baselines)
STOCK_HEADS = {'FastUPerHead': 'UPerHead'}
ALL_VARIANTS = tuple(VARIANTS) + MMSEG_VARIANTS + CONFIG_VARIANTS
DEFAULT_VARIANTS = ['trunk', 'feature2pyramid', 'simple']
DEFAULT_CONFIG_VARIANTS = ['trunk', 'backbone', 'segmentor']
ADAPTER_ARCH_BY_WIDTH = {192: 'tiny', 384: 'small', 768: 'base', 1024: 'large'}
PYRAMID_SCALES = [4, 2, 1, 0.5]
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
MALLOC_MMAP_THRESHOLD = '65536'


# ----------------------------------------------------------------------------------- settings
class Setting(NamedTuple):
    """One timed column: a variant under a dtype, compiled or not."""
    variant: str
    dtype: str
    compiled: bool

    def label(self, show_dtype: bool, show_compiled: bool) -> str:
        tags = ([self.dtype] if show_dtype else []) + (['compiled'] if show_compiled and self.compiled else [])
        return self.variant + (f"[{','.join(tags)}]" if tags else '')


def settings_of(args: argparse.Namespace) -> Dict[str, Setting]:
    """Every (variant, dtype, compiled) combination to time, by label, in alternation order."""
    compiled = {'off': [False], 'on': [True], 'both': [False, True]}[args.compile]
    show_dtype, show_compiled = len(args.dtype) > 1, args.compile == 'both'
    result = {}
    for variant in args.variants:
        for dtype in args.dtype:
            for comp in compiled:
                setting = Setting(variant, dtype, comp)
                result[setting.label(show_dtype, show_compiled)] = setting
    return result


# ----------------------------------------------------------------------------------- the ViT
class TrunkSpec(NamedTuple):
    """What every backbone-level variant shares: the timm model, its chosen blocks, kwargs."""
    model_name: str
    out_indices: Optional[Sequence[int]]
    kwargs: dict


def trunk_spec(args: argparse.Namespace) -> TrunkSpec:
    """The ViT of the backbone-level variants: ``--model``, or the config backbone's."""
    if args.config is None:
        return TrunkSpec(args.model, None, {})
    backbone = load_config(args).model['backbone']
    kind = backbone.get('type')
    if kind == 'ViTPyramid':
        keep = ('norm', 'prefix_tokens', 'stride', 'grid_mapping', 'depth', 'embed_dim', 'num_heads')
        return TrunkSpec(backbone['model_name'], backbone.get('out_indices'),
                         {k: backbone[k] for k in keep if k in backbone})
    if kind == 'ViTAdapter':
        from vitadapter.backbones.vit_adapter import ARCHS
        name = backbone.get('model_name') or ARCHS[backbone['arch']]['model_name']
        return TrunkSpec(name, None, {})
    raise ValueError(f"the config's backbone is {kind!r}; the benchmark's backbone-level variants "
                     f"need a ViTPyramid or ViTAdapter backbone (its model_name is the ViT)")


def vit_geometry(spec: TrunkSpec) -> dict:
    """Width, depth used, heads, MLP ratio, patch, qkv bias, class token and chosen blocks of the
    timm trunk (built on the meta device), for mmseg's VisionTransformer of the same shape."""
    with torch.device('meta'):
        trunk = TimmViTTrunk(spec.model_name, out_indices=spec.out_indices, **spec.kwargs)
    block = trunk.model.blocks[0]
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


def mmseg_vit_cfg(geometry: dict, size: Tuple[int, int], with_cp: bool) -> dict:
    """mmseg's VisionTransformer config with ``geometry`` (see :func:`vit_geometry`)."""
    if len(geometry['out_indices']) != len(PYRAMID_SCALES):
        raise ValueError(f"the mmseg necks take {len(PYRAMID_SCALES)} levels; the trunk chooses "
                         f"blocks {geometry['out_indices']}")
    return dict(type='VisionTransformer', img_size=tuple(size), in_channels=3, drop_rate=0.0,
                attn_drop_rate=0.0, drop_path_rate=0.0, final_norm=False,
                norm_cfg=dict(type='LN', eps=1e-6), act_cfg=dict(type='GELU'),
                interpolate_mode='bicubic', with_cp=with_cp, **geometry)


def mmseg_neck_cfg(kind: str, channels: int) -> dict:
    """mmseg's Feature2Pyramid ('f2p', BN) or MultiLevelNeck ('mln') for ``channels``-wide maps."""
    if kind == 'f2p':
        return dict(type='Feature2Pyramid', embed_dim=channels, rescales=list(PYRAMID_SCALES),
                    norm_cfg=dict(type='BN', requires_grad=True))
    return dict(type='MultiLevelNeck', in_channels=[channels] * len(PYRAMID_SCALES),
                out_channels=channels, scales=list(PYRAMID_SCALES))


class BackboneWithNeck(nn.Module):
    """A backbone (timm trunk or mmseg ViT) followed by an mmseg neck: images -> pyramid levels."""

    def __init__(self, backbone: nn.Module, neck: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.neck = neck

    def forward(self, x: torch.Tensor):
        features = self.backbone(x)
        if isinstance(features, TrunkOutput):
            features = features.maps
        return self.neck(list(features))


def build_mmseg(cfg: dict) -> nn.Module:
    """Build ``cfg`` in mmseg's MODELS registry (mmseg scope; vitadapter's classes registered)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    import vitadapter.engine  # noqa: F401  (registers vitadapter's backbones)
    init_default_scope('mmseg')
    return MODELS.build(copy.deepcopy(cfg))


def adapter_kwargs(spec: TrunkSpec, size: Tuple[int, int], variant: str) -> dict:
    """ViTAdapter's kwargs for the trunk's model: the paper's arch of its width."""
    width = vit_geometry(spec)['embed_dims']
    arch = ADAPTER_ARCH_BY_WIDTH.get(width, 'small')
    return dict(arch=arch, model_name=spec.model_name, img_size=tuple(size), drop_path_rate=0.0,
                **VARIANTS.get(variant, {}))


def build_backbone_variant(args: argparse.Namespace, variant: str, size: Tuple[int, int]) -> nn.Module:
    """A backbone-level variant (images -> levels, or the trunk's :class:`TrunkOutput`)."""
    spec = trunk_spec(args)
    cp = args.grad_checkpointing
    if variant == 'backbone':
        cfg = dict(load_config(args).model['backbone'], pretrained=False, checkpoint=None,
                   drop_path_rate=0.0, img_size=tuple(size))
        if cp:
            cfg['grad_checkpointing'] = True
        return build_mmseg(cfg)
    if variant.startswith('adapter'):
        kwargs = adapter_kwargs(spec, size, variant)
        kwargs['grad_checkpointing'] = kwargs.get('grad_checkpointing', False) or cp
        return ViTAdapter(**kwargs)
    if variant in MMSEG_VARIANTS:
        geometry = vit_geometry(spec)
        if variant.startswith('trunk-'):
            vit = ViTPyramid(spec.model_name, out_indices=spec.out_indices, img_size=tuple(size),
                             grad_checkpointing=cp, **spec.kwargs).trunk
        else:
            vit = build_mmseg(mmseg_vit_cfg(geometry, size, cp))
        if variant == 'mmseg-vit':
            return vit
        neck = build_mmseg(mmseg_neck_cfg(variant.split('-')[1], geometry['embed_dims']))
        return BackboneWithNeck(vit, neck)
    kwargs = dict(spec.kwargs, **VARIANTS[variant])
    kwargs.setdefault('out_indices', spec.out_indices)
    if cp:
        kwargs['grad_checkpointing'] = True
    model = ViTPyramid(spec.model_name, img_size=tuple(size), **kwargs)
    return model.trunk if variant == 'trunk' else model


# ----------------------------------------------------------------------------------- configs
_CONFIG_CACHE: Dict[tuple, object] = {}


def load_config(args: argparse.Namespace):
    """The ``--config`` file (with ``--cfg-options``), prepared by vitadapter: head in_channels
    'auto' filled from the backbone's feature_info. Cached per process."""
    if args.config is None:
        raise ValueError("this variant needs --config (an mmseg config file)")
    options = tuple(sorted((args.cfg_options or {}).items()))
    key = (os.path.abspath(args.config), repr(options))
    if key not in _CONFIG_CACHE:
        from mmengine.config import Config
        from vitadapter.engine import prepare_config
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(dict(args.cfg_options))
        backbone = cfg.model.get('backbone', {})
        if 'pretrained' in backbone or 'checkpoint' in backbone:  # timing needs no weights
            backbone.update(pretrained=False, checkpoint=None)
        _CONFIG_CACHE[key] = prepare_config(cfg)
    return _CONFIG_CACHE[key]


def heads_of(model_cfg: dict) -> List[dict]:
    """The decode and auxiliary head configs (lists of heads flattened)."""
    heads = []
    for key in ('decode_head', 'auxiliary_head'):
        head = model_cfg.get(key)
        heads += list(head) if isinstance(head, (list, tuple)) else ([head] if head else [])
    return heads


def set_head_channels(model_cfg: dict, channels: int) -> None:
    """Every head reads levels of ``channels`` channels: in_channels follows in_index's form."""
    for head in heads_of(model_cfg):
        in_index = head.get('in_index', -1)
        head['in_channels'] = [channels] * len(in_index) if isinstance(in_index, (list, tuple)) else channels


def use_stock_heads(model_cfg: dict) -> None:
    """Replace vitadapter's heads by the mmseg heads they equal (``STOCK_HEADS``)."""
    for head in heads_of(model_cfg):
        head['type'] = STOCK_HEADS.get(head['type'], head['type'])


def segmentor_cfg(args: argparse.Namespace, variant: str, size: Tuple[int, int]) -> dict:
    """The config's model for ``variant``, at input ``size``, stochastic depth off."""
    model = copy.deepcopy(load_config(args).model)  # a ConfigDict: mmseg reads test_cfg.mode
    model.setdefault('data_preprocessor', {})['size'] = tuple(size)
    if variant.startswith(('stock-head', 'mmseg-')):
        use_stock_heads(model)
    if variant in ('segmentor', 'stock-head-segmentor'):
        model['backbone'].update(drop_path_rate=0.0, img_size=tuple(size))
        if args.grad_checkpointing:
            model['backbone']['grad_checkpointing'] = True
        return model
    if model.get('neck'):
        raise ValueError(f"{variant!r} replaces the backbone and adds a neck, but the config "
                         f"already has a neck ({model['neck'].get('type')}); use a config whose "
                         f"heads read the backbone (UperNet)")
    spec = trunk_spec(args)
    geometry = vit_geometry(spec)
    if variant == 'adapter-segmentor':
        model['backbone'] = dict(type='ViTAdapter', **adapter_kwargs(spec, size, variant),
                                 grad_checkpointing=args.grad_checkpointing)
    else:  # mmseg-f2p-segmentor / mmseg-mln-segmentor
        model['backbone'] = mmseg_vit_cfg(geometry, size, args.grad_checkpointing)
        model['neck'] = mmseg_neck_cfg(variant.split('-')[1], geometry['embed_dims'])
    set_head_channels(model, geometry['embed_dims'])
    return model


def num_classes_of(model_cfg: dict) -> int:
    decode = model_cfg['decode_head']
    return int((decode[0] if isinstance(decode, (list, tuple)) else decode)['num_classes'])


def segmentor_batch(model_cfg: dict, batch: int, size: Tuple[int, int]) -> dict:
    """A batch as mmseg's dataloader gives it: uint8 images and random labels of every class."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    h, w = size
    classes = num_classes_of(model_cfg)
    samples = []
    for _ in range(batch):
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, classes, (1, h, w)))
        samples.append(sample)
    inputs = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for _ in range(batch)]
    return dict(inputs=inputs, data_samples=samples)


# ----------------------------------------------------------------------------------- steps
def is_segmentor(variant: str) -> bool:
    return variant.endswith('segmentor')


def outputs(result) -> List[torch.Tensor]:
    """Every tensor a backbone variant returns (levels, the trunk's maps, or [map, cls] pairs)."""
    if isinstance(result, TrunkOutput):
        return list(result.maps)
    flat = []
    for item in result:
        flat += [t for t in item] if isinstance(item, (list, tuple)) else [item]
    return flat


def autocast(device: torch.device, dtype: str):
    """Autocast to ``dtype`` (nothing for fp32)."""
    if dtype == 'fp32':
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[dtype])


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def backbone_step(model: nn.Module, x: torch.Tensor, mode: str, dtype: str) -> Callable[[], None]:
    """One call of ``mode`` on a backbone-level variant."""
    if mode == 'forward':
        model.eval()

        def forward():
            with torch.no_grad(), autocast(x.device, dtype):
                model(x)
        return forward
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    scaler = torch.amp.GradScaler(x.device.type, enabled=dtype == 'fp16' and x.device.type == 'cuda')

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(x.device, dtype):
            loss = sum(y.float().pow(2).mean() for y in outputs(model(x)))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return train_step


def optim_wrapper_for(model: nn.Module, device: torch.device, dtype: str):
    """mmengine optimizer wrapper: AdamW, autocast to ``dtype`` (loss scaling for fp16 on a GPU)."""
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    from vitadapter.engine import CPUAmpOptimWrapper
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    if dtype == 'fp32':
        return OptimWrapper(optimizer)
    name = {'bf16': 'bfloat16', 'fp16': 'float16'}[dtype]
    if device.type == 'cuda':
        return AmpOptimWrapper(optimizer=optimizer, dtype=name,
                               loss_scale='dynamic' if dtype == 'fp16' else 1.0)
    return CPUAmpOptimWrapper(optimizer=optimizer, dtype=name)


def segmentor_step(model: nn.Module, data: dict, mode: str, dtype: str, forward_kind: str,
                   device: torch.device) -> Callable[[], None]:
    """One call of ``mode`` on an mmseg segmentor: ``train_step``, or a forward pass."""
    if mode == 'train':
        model.train()
        wrapper = optim_wrapper_for(model, device, dtype)

        def train_step():
            try:
                model.train_step(data, wrapper)
            except ValueError as err:
                if 'Expected more than 1 value per channel' in str(err):
                    raise ValueError("a BN layer of the heads (UPerHead's 1x1 pooling) needs more than "
                                     "one image in training: use --batch 2 or more") from err
                raise
        return train_step
    model.eval()

    def forward():
        with torch.no_grad(), autocast(device, dtype):
            if forward_kind == 'predict':
                model.test_step(data)
            else:
                batch = model.data_preprocessor(data, False)
                model(batch['inputs'], batch['data_samples'], mode='tensor')
    return forward


def compile_in_place(model: nn.Module, variant: str) -> None:
    """``torch.compile`` the model, or a segmentor's backbone, neck and heads (the segmentor's own
    code, data preprocessing and losses stay eager)."""
    if not is_segmentor(variant):
        model.compile()
        return
    for name in ('backbone', 'neck', 'decode_head', 'auxiliary_head'):
        part = getattr(model, name, None)
        if isinstance(part, nn.ModuleList):
            for head in part:
                head.compile()
        elif isinstance(part, nn.Module):
            part.compile()


class Case(NamedTuple):
    """A built variant ready to time: the model, one call, and what it is."""
    model: nn.Module
    step: Callable[[], None]
    params: int
    trainable: int


def build_case(args: argparse.Namespace, setting: Setting, size: Tuple[int, int],
               compile_model: bool = True) -> Case:
    """Build the model of ``setting`` on the device and the function running one call of it."""
    device = torch.device(args.device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    if is_segmentor(setting.variant):
        cfg = segmentor_cfg(args, setting.variant, size)
        model = build_mmseg(cfg).to(device, memory_format=memory_format)
        step = segmentor_step(model, segmentor_batch(cfg, args.batch, size), args.mode, setting.dtype,
                              args.segmentor_forward, device)
    else:
        model = build_backbone_variant(args, setting.variant, size).to(device, memory_format=memory_format)
        x = torch.randn(args.batch, 3, *size, device=device).contiguous(memory_format=memory_format)
        step = backbone_step(model, x, args.mode, setting.dtype)
    if setting.compiled and compile_model:
        compile_in_place(model, setting.variant)
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Case(model, step, params, trainable)


# ----------------------------------------------------------------------------------- FLOPs
def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args,
                            out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_backward_flop_count
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def missing_flop_formulas() -> dict:
    """FLOP formulas for the CPU's fused attention, which torch's counter does not know."""
    from torch.utils.flop_counter import flop_registry
    aten = torch.ops.aten
    extra = {}
    for name, formula in (('_scaled_dot_product_flash_attention_for_cpu', _cpu_sdpa_flop),
                          ('_scaled_dot_product_flash_attention_for_cpu_backward', _cpu_sdpa_backward_flop)):
        op = getattr(aten, name, None)
        if op is not None and op not in flop_registry and op.default not in flop_registry:
            extra[op] = formula
    return extra


def count_flops(fn: Callable[[], None]) -> int:
    """FLOPs of one call of ``fn`` (eager), counted by torch's FlopCounterMode plus
    :func:`missing_flop_formulas`."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False, custom_mapping=missing_flop_formulas()) as counter:
        fn()
    return int(counter.get_total_flops())


# ----------------------------------------------------------------------------------- timing
def timed(fn: Callable[[], None], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def measure(fns: Dict[str, Callable[[], None]], repeats: int, warmup: int,
            device: torch.device = torch.device('cpu')) -> Tuple[Dict[str, float], Dict[str, float]]:
    """(median seconds per call, seconds of the first warm-up call) of each function, calls
    alternating between the functions."""
    times: Dict[str, List[float]] = {name: [] for name in fns}
    first: Dict[str, float] = {}
    for i in range(warmup):
        for name, fn in fns.items():
            seconds = timed(fn, device)
            if i == 0:
                first[name] = seconds
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn, device))
    return {name: statistics.median(t) for name, t in times.items()}, first


# ----------------------------------------------------------------------------------- memory
def _status_kib(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def _free_grads(model: nn.Module) -> None:
    for p in model.parameters():
        p.grad = None


def _measure_cpu_memory(args: argparse.Namespace, setting: Setting, size) -> Tuple[float, float]:
    baseline = _status_kib('VmRSS')
    case = build_case(args, setting, size)
    case.step()  # warm-up: lazily allocated state (AdamW moments, caches) exists from here on
    _free_grads(case.model)
    before = _status_kib('VmRSS')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset the peak resident set to the current one
    case.step()
    peak = _status_kib('VmHWM')
    return (peak - baseline) / 1024, (peak - before) / 1024


def _measure_cuda_memory(args: argparse.Namespace, setting: Setting, size) -> Tuple[float, float]:
    device = torch.device(args.device)
    baseline = torch.cuda.memory_allocated(device)
    case = build_case(args, setting, size)
    case.step()
    _free_grads(case.model)
    synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    case.step()
    synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return (peak - baseline) / 2 ** 20, (peak - before) / 2 ** 20


def _peak_memory_child(args: dict, setting: tuple, size: tuple, queue) -> None:
    try:
        ns = argparse.Namespace(**args)
        if ns.threads:
            torch.set_num_threads(ns.threads)
        torch.manual_seed(0)
        measure_fn = _measure_cuda_memory if ns.device.startswith('cuda') else _measure_cpu_memory
        queue.put(('ok', measure_fn(ns, Setting(*setting), tuple(size))))
    except BaseException:  # report the failure instead of leaving the parent waiting
        queue.put(('error', traceback.format_exc()))


def peak_memory_mib(args: argparse.Namespace, setting: Setting, size) -> Tuple[float, float]:
    """(peak MiB, call MiB) of one call, measured in a fresh process (see the module doc)."""
    os.environ['MALLOC_MMAP_THRESHOLD_'] = MALLOC_MMAP_THRESHOLD  # read by glibc at process start
    ctx = multiprocessing.get_context('spawn')
    queue = ctx.Queue()
    child = ctx.Process(target=_peak_memory_child, args=(vars(args), tuple(setting), tuple(size), queue))
    child.start()
    status, result = queue.get()
    child.join()
    if status != 'ok' or child.exitcode != 0:
        raise RuntimeError(f"the memory measurement of {setting.variant!r} failed "
                           f"(exit code {child.exitcode}):\n{result}")
    return result


# ----------------------------------------------------------------------------------- profile
def profile_table(step: Callable[[], None], rows: int, device: torch.device) -> str:
    """torch.profiler's operator table of one call, the ``rows`` largest self times (on the
    device's clock for a GPU run) first."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        step()
    sort_by = 'self_cuda_time_total' if len(activities) > 1 else 'self_cpu_time_total'
    return prof.key_averages().table(sort_by=sort_by, row_limit=rows)


# ----------------------------------------------------------------------------------- one size
def run_size(args: argparse.Namespace, settings: Dict[str, Setting], size: Tuple[int, int]) -> List[dict]:
    """Time (count, measure) every setting at ``size``; one result row per setting."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    cases = {label: build_case(args, s, size, compile_model=False) for label, s in settings.items()}
    flops = {}
    if args.flops:
        for label, case in cases.items():  # eager: the counter cannot see inside compiled code
            flops[label] = count_flops(case.step)
    for label, case in cases.items():
        if settings[label].compiled:
            compile_in_place(case.model, settings[label].variant)
    medians, first = measure({label: c.step for label, c in cases.items()}, args.repeats, args.warmup,
                             device)
    profiles = {label: profile_table(c.step, args.profile, device)
                for label, c in cases.items()} if args.profile else {}
    params = {label: (c.params, c.trainable) for label, c in cases.items()}
    del cases
    memory = {label: peak_memory_mib(args, s, size) for label, s in settings.items()} if args.memory else {}
    labels = list(settings)
    rows = []
    for label in labels:
        s = settings[label]
        row = dict(variant=s.variant, label=label, height=size[0], width=size[1], batch=args.batch,
                   mode=args.mode, dtype=s.dtype, compiled=s.compiled, channels_last=args.channels_last,
                   grad_checkpointing=args.grad_checkpointing, device=args.device,
                   threads=torch.get_num_threads(), seconds=medians[label],
                   ratio=medians[label] / medians[labels[0]], images_per_s=args.batch / medians[label],
                   first_seconds=first.get(label), params=params[label][0], trainable=params[label][1])
        if label in flops:
            row.update(gflop=flops[label] / 1e9, gflop_per_s=flops[label] / 1e9 / medians[label])
        if label in memory:
            (peak, call), (peak0, call0) = memory[label], memory[labels[0]]
            row.update(peak_mib=peak, call_mib=call, peak_ratio=peak / peak0, call_ratio=call / call0)
        if label in profiles:
            row['profile'] = profiles[label]
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------- output
def print_table(args: argparse.Namespace, rows: List[dict]) -> None:
    """One table: a title line, a header line, one line per variant (nothing else)."""
    h, w = rows[0]['height'], rows[0]['width']
    name = args.config or args.model
    flags = [f for f, on in ((f"autocast {args.dtype[0]}", args.dtype != ['fp32'] and len(args.dtype) == 1),
                             ('compiled', args.compile == 'on'),
                             ('channels_last', args.channels_last),
                             ('grad checkpointing', args.grad_checkpointing)) if on]
    print(f"{name}, input {args.batch}x3x{h}x{w}, mode {args.mode}, {args.device}, "
          f"{rows[0]['threads']} threads, median of {args.repeats}" + ''.join(f", {f}" for f in flags))
    width = max(16, max(len(r['label']) for r in rows))
    header = f"{'variant':<{width}} {'seconds':>8} {'ratio':>6} {'img/s':>7}"
    show_first = any(r['compiled'] for r in rows) and args.warmup > 0
    header += f" {'first s':>8}" if show_first else ''
    header += f" {'GFLOP':>9} {'GFLOP/s':>8}" if args.flops else ''
    header += f" {'params M':>8}"
    memory = 'peak_mib' in rows[0]
    header += f" {'peak MiB':>9} {'ratio':>6} {'call MiB':>9} {'ratio':>6}" if memory else ''
    print(header)
    for r in rows:
        line = f"{r['label']:<{width}} {r['seconds']:8.3f} {r['ratio']:6.2f} {r['images_per_s']:7.2f}"
        line += f" {r['first_seconds']:8.2f}" if show_first else ''
        line += f" {r['gflop']:9.1f} {r['gflop_per_s']:8.1f}" if args.flops else ''
        line += f" {r['params'] / 1e6:8.2f}"
        if memory:
            line += f" {r['peak_mib']:9.1f} {r['peak_ratio']:6.2f} {r['call_mib']:9.1f} {r['call_ratio']:6.2f}"
        print(line)


def print_profiles(rows: List[dict]) -> None:
    for r in rows:
        if 'profile' in r:
            print(f"\nprofile of {r['label']} at {r['height']}x{r['width']} (one call):\n{r['profile']}")


def write_json(path: str, args: argparse.Namespace, rows: List[dict]) -> None:
    """All rows, and per-variant dicts of the first size (``seconds``, ``ratio``, ``peak_mib``...)."""
    first = [r for r in rows if (r['height'], r['width']) == (rows[0]['height'], rows[0]['width'])]
    options = {k: v for k, v in vars(args).items() if k not in ('json', 'csv', 'plot')}
    result = dict(options, size=[rows[0]['height'], rows[0]['width']],
                  rows=[{k: v for k, v in r.items() if k != 'profile'} for r in rows])
    for key in ('seconds', 'ratio', 'images_per_s', 'gflop', 'params', 'peak_mib', 'call_mib',
                'peak_ratio', 'call_ratio'):
        if key in first[0]:
            result[key] = {r['label']: r[key] for r in first}
    with open(path, 'w') as f:
        json.dump(result, f, indent=2, default=str)


CSV_FIELDS = ['label', 'variant', 'height', 'width', 'batch', 'mode', 'dtype', 'compiled',
              'channels_last', 'grad_checkpointing', 'device', 'threads', 'seconds', 'ratio',
              'images_per_s', 'first_seconds', 'gflop', 'gflop_per_s', 'params', 'trainable',
              'peak_mib', 'call_mib', 'peak_ratio', 'call_ratio']


def write_csv(path: str, rows: List[dict]) -> None:
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)


def write_plot(path: str, args: argparse.Namespace, rows: List[dict]) -> None:
    """Seconds (and peak MiB, GFLOP when measured) of every variant against the input size."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = [('seconds', 'seconds per call')]
    if 'peak_mib' in rows[0]:
        panels.append(('peak_mib', 'peak memory (MiB)'))
    if 'gflop' in rows[0]:
        panels.append(('gflop', 'GFLOP per call'))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    sizes = sorted({(r['height'], r['width']) for r in rows}, key=lambda s: s[0] * s[1])
    for ax, (key, title) in zip(axes[0], panels):
        for label in dict.fromkeys(r['label'] for r in rows):
            points = sorted(((r['height'] * r['width'], r[key]) for r in rows if r['label'] == label))
            ax.plot([math.sqrt(p) for p, _ in points], [v for _, v in points], marker='o', label=label)
        ax.set_xticks([math.sqrt(h * w) for h, w in sizes], [f"{h}x{w}" for h, w in sizes])
        ax.set_xlabel('input size (axis: square root of the pixel count)')
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{os.path.basename(args.config or args.model)}, batch {args.batch}, mode {args.mode}, "
                 f"{args.device}, {rows[0]['threads']} threads")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------------- CLI
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--model', help='a timm ViT name (default vit_base_patch16_224)')
    source.add_argument('--config', help='an mmseg config file (its backbone and whole model)')
    parser.add_argument('--cfg-options', nargs='+', default=None, metavar='KEY=VALUE',
                        help='override config settings (mmengine syntax)')
    parser.add_argument('--size', type=int, nargs=2, action='append', metavar=('H', 'W'),
                        help='input size; repeat for several (default 512 512)')
    parser.add_argument('--sizes', type=int, nargs='+', metavar='N', help='square input sizes')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--variants', nargs='+', default=None, choices=ALL_VARIANTS,
                        help=f'default: {" ".join(DEFAULT_VARIANTS)} '
                             f'(with --config: {" ".join(DEFAULT_CONFIG_VARIANTS)})')
    parser.add_argument('--mode', choices=('forward', 'train'), default='forward',
                        help='forward pass (eval, no grad) or training step (forward, backward, AdamW)')
    parser.add_argument('--segmentor-forward', choices=('tensor', 'predict'), default='tensor',
                        help="segmentors in forward mode: mode='tensor' (logits) or test_step (predict)")
    parser.add_argument('--dtype', nargs='+', default=['fp32'], choices=sorted(DTYPES),
                        help='autocast dtype; several: each variant is timed with each')
    parser.add_argument('--channels-last', action='store_true', help='channels_last memory format')
    parser.add_argument('--compile', nargs='?', const='on', default='off', choices=('off', 'on', 'both'),
                        help='torch.compile the models (both: time eager and compiled, alternating)')
    parser.add_argument('--grad-checkpointing', action='store_true',
                        help='grad checkpointing in every variant that supports it')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    parser.add_argument('--memory', action='store_true',
                        help='also measure the peak memory of one call per variant (fresh processes)')
    parser.add_argument('--no-flops', dest='flops', action='store_false', help='do not count FLOPs')
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help='print the N most expensive operators of one call per variant')
    parser.add_argument('--json', help='write the results here (JSON)')
    parser.add_argument('--csv', help='write the results here (CSV, one row per size and variant)')
    parser.add_argument('--plot', help='write a PNG of time (memory, GFLOP) against input size')
    args = parser.parse_args(argv)
    return check_args(parser, args)


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Defaults that depend on other options, and refusals with the reason."""
    if args.config is None and args.model is None:
        args.model = 'vit_base_patch16_224'
    if args.cfg_options:
        from mmengine.config import DictAction
        namespace = argparse.Namespace()
        DictAction(option_strings=['--cfg-options'], dest='cfg_options')(parser, namespace, args.cfg_options)
        args.cfg_options = namespace.cfg_options
    if args.variants is None:
        args.variants = list(DEFAULT_CONFIG_VARIANTS if args.config else DEFAULT_VARIANTS)
    if args.config is None and any(v in CONFIG_VARIANTS for v in args.variants):
        parser.error(f"variants {[v for v in args.variants if v in CONFIG_VARIANTS]} need --config")
    sizes = [tuple(s) for s in (args.size or [])] + [(n, n) for n in (args.sizes or [])]
    args.size = sizes or [(512, 512)]
    args.sizes = None
    if min(min(s) for s in args.size) < 1 or args.batch < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error('sizes, --batch and --repeats must be positive, --warmup not negative')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error('--device cuda but torch sees no GPU')
    if args.compile != 'off' and args.warmup < 1:
        parser.error('--compile needs --warmup 1 or more (the first call compiles)')
    if args.device == 'cpu' and 'fp16' in args.dtype and args.mode == 'train':
        print('note: fp16 training on a CPU runs without loss scaling', file=sys.stderr)
    return args


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = settings_of(args)
    rows = []
    for size in args.size:
        size_rows = run_size(args, settings, size)
        print_table(args, size_rows)
        rows += size_rows
    print_profiles(rows)
    if args.json:
        write_json(args.json, args, rows)
    if args.csv:
        write_csv(args.csv, rows)
    if args.plot:
        write_plot(args.plot, args, rows)
    return rows


if __name__ == '__main__':
    main()
