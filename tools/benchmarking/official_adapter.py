"""The ``official-adapter`` baseline: the official ViT-Adapter backbone module, run from a local
copy of its published code (github.com/czczup/ViT-Adapter; never vendored here).

Where the code comes from: ``--official-adapter-dir DIR`` or the environment variable
``VITADAPTER_OFFICIAL_ADAPTER_DIR``: a checkout (or ``git archive``) of the repository, holding
``segmentation/mmseg_custom/models/backbones/{vit_adapter.py, adapter_modules.py, base/vit.py}`` and
the deformable attention package ``ops`` (``segmentation/ops``, a link to ``detection/ops`` in the
repository, or ``detection/ops``)::

    git clone https://github.com/czczup/ViT-Adapter /tmp/vit-adapter-official
    python tools/benchmark.py --model vit_small_patch16_224 --variants adapter official-adapter simple \\
        --official-adapter-dir /tmp/vit-adapter-official

The official files are loaded as they are, under a private package name, with small import shims
in place while they import (and only then: the real mmseg / mmcv, if installed, are put back):

* ``mmseg.models.builder.BACKBONES`` (mmseg 0.x registry): a stand-in whose ``register_module()``
  returns the class unchanged (nothing is registered in mmseg 1.x's registry);
* ``mmseg.utils.get_root_logger``: a ``logging`` logger; ``mmcv.runner.BaseModule``: ``nn.Module``
  (the official ViT only calls ``super().__init__()``); ``mmcv_custom.my_load_checkpoint``: refuses
  (no pretrained file is loaded: ``pretrained=None``);
* ``MultiScaleDeformableAttention`` (the compiled extension of ``ops``): a stand-in; the official
  ``MSDeformAttn`` module then samples with the official pure-PyTorch fallback
  ``ops.functions.ms_deform_attn_func.ms_deform_attn_core_pytorch`` (the code's own CPU path:
  one ``grid_sample`` per level), so no compiled op is needed;
* ``timm.models.layers`` is timm's own deprecated alias of ``timm.layers`` (works on timm 1.x).

The module is the official ``ViTAdapter`` with the paper's settings of the trunk's width (heads,
value ratio, 4 interactions of equal slices, 2 extra extractors, ConvFFN 0.25), stochastic depth
off, ``layer_scale=False`` (the timm DeiT trunk of our ``adapter`` variant has no LayerScale) and
``pretrain_size`` = the input size (no position-embedding interpolation, as in our variant), its
SyncBN layers as they are (on one process they compute BatchNorm). :func:`share_weights` loads
its weights into our ``adapter`` cases through vitadapter's official-checkpoint converter and
reports the largest output difference (parity) on one input.
"""
import importlib
import logging
import os
import sys
import types
from contextlib import contextmanager
from functools import lru_cache
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn

ENV_VAR = 'VITADAPTER_OFFICIAL_ADAPTER_DIR'
VARIANT = 'official-adapter'
PACKAGE = '_vitadapter_official_adapter'
BACKBONES_DIR = os.path.join('mmseg_custom', 'models', 'backbones')
# the paper's settings of the official configs, by ViT width: (ViT heads, deformable heads, value ratio)
SETTINGS_BY_WIDTH = {192: (3, 6, 1.0), 384: (6, 6, 1.0), 768: (12, 12, 0.5), 1024: (16, 16, 0.5)}


def official_dir(given: Optional[str]) -> str:
    """The local copy of the official code: ``given`` (``--official-adapter-dir``) or $ENV_VAR."""
    path = given or os.environ.get(ENV_VAR)
    if not path:
        raise ValueError(f"the {VARIANT!r} variant needs a local copy of the official ViT-Adapter code "
                         f"(github.com/czczup/ViT-Adapter): pass --official-adapter-dir DIR or set "
                         f"{ENV_VAR}=DIR")
    return os.path.abspath(os.path.expanduser(path))


def code_dirs(root: str) -> Tuple[str, str]:
    """(the official backbones directory, the directory holding the ``ops`` package) in ``root``,
    the repository (or its ``segmentation`` folder)."""
    segmentation = root if os.path.isdir(os.path.join(root, BACKBONES_DIR)) else os.path.join(root, 'segmentation')
    backbones = os.path.join(segmentation, BACKBONES_DIR)
    needed = [os.path.join(backbones, f) for f in ('vit_adapter.py', 'adapter_modules.py', 'base/vit.py')]
    missing = [f for f in needed if not os.path.isfile(f)]
    if missing:
        raise FileNotFoundError(f"{root} is not a copy of the official ViT-Adapter code: missing "
                                f"{missing}; give the repository's root (git clone "
                                f"https://github.com/czczup/ViT-Adapter)")
    candidates = [segmentation, os.path.join(os.path.dirname(segmentation), 'detection'), root]
    for parent in candidates:
        if os.path.isfile(os.path.join(parent, 'ops', 'functions', 'ms_deform_attn_func.py')):
            return backbones, parent
    raise FileNotFoundError(f"no deformable attention package 'ops' (ops/functions/ms_deform_attn_func.py) "
                            f"in {candidates}: the official repository has it in detection/ops")


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []  # a package, so that submodules can be imported from it
    module.__dict__.update(attrs)
    return module


class _Registry:
    """mmseg 0.x ``BACKBONES`` stand-in: ``register_module()`` returns the class unchanged."""

    def register_module(self, *args, **kwargs):
        return (lambda cls: cls) if not args or not isinstance(args[0], type) else args[0]


def _no_checkpoint(*args, **kwargs):
    raise RuntimeError(f"the {VARIANT!r} baseline loads no pretrained file (pretrained=None)")


def _shims() -> Dict[str, types.ModuleType]:
    """The modules the official files import that are not there (or not 0.x) here."""
    return {
        'mmseg': _module('mmseg'),
        'mmseg.models': _module('mmseg.models'),
        'mmseg.models.builder': _module('mmseg.models.builder', BACKBONES=_Registry()),
        'mmseg.utils': _module('mmseg.utils', get_root_logger=lambda *a, **k: logging.getLogger(PACKAGE)),
        'mmcv': _module('mmcv'),
        'mmcv.runner': _module('mmcv.runner', BaseModule=nn.Module),
        'mmcv_custom': _module('mmcv_custom', my_load_checkpoint=_no_checkpoint),
        'MultiScaleDeformableAttention': _module('MultiScaleDeformableAttention'),
    }


@contextmanager
def _shimmed_imports(ops_parent: str) -> Iterator[None]:
    """The shims and the official ``ops`` in ``sys.modules`` while the official files import; what
    was there before (the real mmseg / mmcv, another ``ops``) is put back afterwards."""
    shims = _shims()
    names = list(shims) + ['ops']
    saved = {name: sys.modules[name] for name in list(sys.modules)
             if name in names or name.startswith(('ops.', 'mmseg.', 'mmcv.'))}
    for name in saved:
        del sys.modules[name]
    sys.modules.update(shims)
    sys.path.insert(0, ops_parent)
    try:
        yield
    finally:
        sys.path.remove(ops_parent)
        for name in [n for n in sys.modules if n in names or n.startswith(('ops.', 'mmseg.', 'mmcv.'))]:
            del sys.modules[name]
        sys.modules.update(saved)


def pytorch_deform_function(core):
    """A stand-in for ``MSDeformAttnFunction`` whose ``apply`` runs the official PyTorch fallback
    ``core`` (``ms_deform_attn_core_pytorch``: value, shapes, locations, weights)."""
    class PyTorchMSDeformAttnFunction:
        @staticmethod
        def apply(value, spatial_shapes, level_start_index, locations, weights, im2col_step):
            return core(value, spatial_shapes, locations, weights)
    return PyTorchMSDeformAttnFunction


@lru_cache(maxsize=None)
def load_official(root: str) -> types.ModuleType:
    """The official ``vit_adapter`` module, imported from ``root`` under the private package
    ``PACKAGE`` (its relative imports: ``adapter_modules``, ``base.vit``), sampling with the
    official PyTorch fallback."""
    backbones, ops_parent = code_dirs(root)
    package = _module(PACKAGE)
    package.__path__ = [backbones]
    sys.modules[PACKAGE] = package
    with _shimmed_imports(ops_parent):
        func = importlib.import_module('ops.functions.ms_deform_attn_func')
        attn = importlib.import_module('ops.modules.ms_deform_attn')
        attn.MSDeformAttnFunction = pytorch_deform_function(func.ms_deform_attn_core_pytorch)
        module = importlib.import_module(f'{PACKAGE}.vit_adapter')
        module.official_ops = (func, attn)  # kept: sys.modules forgets them
    return module


def build_official_adapter(root: str, embed_dim: int, depth: int, size: Tuple[int, int],
                           patch_size: int = 16, grad_checkpointing: bool = False) -> nn.Module:
    """The official ``ViTAdapter`` of ``embed_dim`` and ``depth`` for ``size`` inputs (see the module
    doc for its settings). Input (B, 3, H, W), H and W multiples of 32; output: 4 maps."""
    if size[0] != size[1] or size[0] % 32:
        raise ValueError(f"the official ViT-Adapter needs square inputs (pretrain_size is one number) "
                         f"with sides divisible by 32; got {size}")
    if embed_dim not in SETTINGS_BY_WIDTH:
        raise ValueError(f"no official ViT-Adapter setting for width {embed_dim}; "
                         f"known: {sorted(SETTINGS_BY_WIDTH)}")
    vit_heads, deform_heads, ratio = SETTINGS_BY_WIDTH[embed_dim]
    step = depth // 4
    interactions = [[i * step, (i + 1) * step - 1] for i in range(4)]
    module = load_official(root)
    return module.ViTAdapter(
        pretrain_size=size[0], img_size=size[0], patch_size=patch_size, embed_dim=embed_dim, depth=depth,
        num_heads=vit_heads, mlp_ratio=4, qkv_bias=True, drop_path_rate=0.0, layer_scale=False,
        conv_inplane=64, n_points=4, deform_num_heads=deform_heads, deform_ratio=ratio, init_values=0.0,
        interaction_indexes=interactions, with_cffn=True, cffn_ratio=0.25, add_vit_feature=True,
        use_extra_extractor=True, with_cp=grad_checkpointing, pretrained=None)


def converted_state(official: nn.Module) -> Dict[str, torch.Tensor]:
    """The official module's weights under our ``ViTAdapter``'s names (vitadapter's converter of
    official checkpoints)."""
    from vitadapter.backbones import convert_vit_adapter_official
    state = {'backbone.' + k: v for k, v in official.state_dict().items()}
    converted = convert_vit_adapter_official({'state_dict': state})
    return {k[len('backbone.'):]: v for k, v in converted.items()}


def share_weights(cases: dict, settings: dict, size: Tuple[int, int]) -> List[str]:
    """Load the ``official-adapter`` case's weights into every ``adapter`` / ``adapter-cp`` case and
    measure the parity: the largest |difference| of the 4 outputs on one input (eval mode, no
    gradients), over the largest |output|. Returns the printed lines."""
    official = [label for label, s in settings.items() if s.variant == VARIANT]
    ours = [label for label, s in settings.items() if s.variant in ('adapter', 'adapter-cp')]
    if not official or not ours:
        return []
    reference = cases[official[0]].model
    state = converted_state(reference)
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    x = x.to(next(reference.parameters()).device)
    lines = []
    for label in ours:
        model = cases[label].model
        model.load_state_dict(state, strict=True)
        diff, scale = parity(model, reference, x)
        lines.append(f"parity {label} vs {official[0]} (same weights, one {size[0]}x{size[1]} input, "
                     f"fp32, eval): max |diff| {diff:.2e}, relative to max |output| {diff / scale:.2e}")
    return lines


def parity(ours: nn.Module, official: nn.Module, x: torch.Tensor) -> Tuple[float, float]:
    """(max |ours - official|, max |official|) over the 4 output levels, both in eval mode without
    gradients (their train/eval modes are restored)."""
    modes = ours.training, official.training
    ours.eval()
    official.eval()
    try:
        with torch.no_grad():
            a, b = ours(x), official(x)
    finally:
        ours.train(modes[0])
        official.train(modes[1])
    diff = max(float((u - v).abs().max()) for u, v in zip(a, b))
    scale = max(float(v.abs().max()) for v in b)
    return diff, scale


def ratio_lines(rows: List[dict]) -> List[str]:
    """``adapter / official-adapter`` and ``adapter / simple`` (ViTPyramid) time and peak-memory
    ratios of the rows of one size, for the labels measured; none without an official row."""
    if not any(r['variant'] == VARIANT for r in rows):
        return []
    by_variant: Dict[tuple, dict] = {}
    for r in rows:
        by_variant.setdefault((r['variant'], r['dtype'], r['compiled']), r)
    lines = []
    for (variant, dtype, compiled), r in by_variant.items():
        if variant not in ('adapter', 'adapter-cp'):
            continue
        for other in (VARIANT, 'simple'):
            o = by_variant.get((other, dtype, compiled))
            if o is None:
                continue
            text = f"{r['label']} / {o['label']}: time {r['seconds'] / o['seconds']:.3f}"
            if 'peak_mib' in r and 'peak_mib' in o:
                text += f", peak memory {r['peak_mib'] / o['peak_mib']:.3f}"
            lines.append(text + f" ({r['mode']})")
    return lines
