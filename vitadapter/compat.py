"""The private third-party API vitadapter relies on, all in this one module.

Each function below wraps one private name of torch, timm or numpy that has no public equivalent,
says the releases it was checked on, and is exercised against the installed release by
``tests/test_compat.py`` (so an upgrade that moves a name fails there, by name, not deep inside a
training run). Everything else in vitadapter uses public API only; where a private name used to
be read, its public equivalent now is:

===========================================  =================================================
formerly private                              public equivalent used instead
===========================================  =================================================
timm ``VisionTransformer._pos_embed``         :meth:`vitadapter.trunk.TimmViTTrunk.embed` (own)
mmengine ``mmengine._strategy.FSDPStrategy``  ``mmengine.registry.STRATEGIES.get('FSDPStrategy')``
mmseg ``SegDataPreProcessor._enable_normalize``  its ``mean`` buffer (present iff normalising)
mmengine ``HistoryBuffer._log_history``       ``HistoryBuffer.data``
timm ``RotaryEmbeddingDinoV3._create_embed``  (no longer replaced: :func:`rope_embedding`)
===========================================  =================================================

This module imports nothing but torch at module level; each function imports what it wraps.
"""
from typing import Any, Dict, List, Optional, Tuple

import torch

# The releases each private name was checked on (the CI lanes run the oldest and newest).
CHECKED = {
    'torch.utils._python_dispatch._get_current_dispatch_mode': 'torch 2.4 - 2.14',
    'torch.distributed.fsdp._common_utils._is_fsdp_flattened': 'torch 2.4 - 2.14',
    'torch.distributed.algorithms._checkpoint.checkpoint_wrapper': 'torch 2.4 - 2.14',
    'timm.models._builder._resolve_pretrained_source': 'timm 1.0.16 - 1.0.31',
    'timm.models._features.feature_take_indices': 'timm 1.0.16 - 1.0.31',
    'timm.layers.RotaryEmbeddingDinoV3._get_pos_embed_from_coords': 'timm 1.0.20 - 1.0.31',
    'numpy.core.multiarray / numpy._core.multiarray (pickled arrays)': 'numpy 1.26, 2.2',
    'torch.native_layer_norm, torch.ops.aten.native_layer_norm_backward': 'torch 2.6 - 2.14',
    'torch.ops.aten.convolution_backward, torch.ops.aten.gelu_backward': 'torch 2.6 - 2.14',
}


# ------------------------------------------------------------------------------------ torch

def current_dispatch_mode() -> Optional[Any]:
    """The innermost active Python dispatch mode (``FlopCounterMode``, fake tensors, ...) or None.
    torch has no public query for it."""
    from torch.utils._python_dispatch import _get_current_dispatch_mode
    return _get_current_dispatch_mode()


def is_fsdp_flattened(param: torch.Tensor) -> bool:
    """Whether FSDP flattened ``param`` into a 1-D shard (its shape then says nothing of the
    original's). torch marks such parameters with a private flag and offers no public test."""
    from torch.distributed.fsdp._common_utils import _is_fsdp_flattened
    return bool(_is_fsdp_flattened(param))


def activation_checkpointing() -> Tuple[Any, Any, Any]:
    """torch's ``(CheckpointImpl, apply_activation_checkpointing, checkpoint_wrapper)``: activation
    checkpointing applied *inside* FSDP units, the only form FSDP's own docs give; torch keeps
    it in a private module."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointImpl, apply_activation_checkpointing, checkpoint_wrapper)
    return CheckpointImpl, apply_activation_checkpointing, checkpoint_wrapper


def normalize_last_dim(x: torch.Tensor, eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """(x_hat, rstd): LayerNorm over the last dimension without affine, and the inverse standard
    deviations (..., 1) it divided by, in one fused pass. ``F.layer_norm`` returns x_hat only
    (and ``Tensor.var`` over a short last dimension is ~10x slower than the fused kernel)."""
    x_hat, _, rstd = torch.native_layer_norm(x, x.shape[-1:], None, None, eps)
    return x_hat, rstd


def normalize_last_dim_backward(grad: torch.Tensor, x_hat: torch.Tensor, rstd: torch.Tensor) -> torch.Tensor:
    """The gradient of :func:`normalize_last_dim`'s input from its output's, given x_hat and rstd
    only (not the input): ``rstd * (g - mean(g) - x_hat * mean(g * x_hat))``, by torch's fused
    LayerNorm backward run on x_hat as an input of mean 0 and deviation 1."""
    zeros, ones = torch.zeros_like(rstd), torch.ones_like(rstd)
    grad_in, _, _ = torch.ops.aten.native_layer_norm_backward(
        grad, x_hat, x_hat.shape[-1:], zeros, ones, None, None, [True, False, False])
    return grad_in.mul_(rstd)  # in place: the kernel's own fresh output


def depthwise_gelu_backward(grad: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(grad of y, grad of weight) of ``conv2d(gelu(y), weight, padding=k // 2, groups=C)`` (a
    depthwise convolution of a GELU) from its output's gradient, by the kernels autograd runs
    (torch's backward functions of the two ops), without recomputing the convolution and with
    at most two maps of y's size alive beside ``grad``: the weight's gradient first (it needs
    GELU(y), recomputed and freed), then the input's (which needs only y's shape), and the GELU's
    backward written over it. y: (B, C, H, W)."""
    k, groups = weight.shape[-1], weight.shape[0]
    conv = ([1, 1], [k // 2, k // 2], [1, 1], False, [0, 0], groups)
    act = torch.nn.functional.gelu(y)
    grad_weight = torch.ops.aten.convolution_backward(grad, act, weight, None, *conv, [False, True, False])[1]
    del act
    grad_act = torch.ops.aten.convolution_backward(grad, y, weight, None, *conv, [True, False, False])[0]
    del grad  # the caller's reference is the last one where it passes the gradient on
    return torch.ops.aten.gelu_backward.grad_input(grad_act, y, grad_input=grad_act), grad_weight


# ------------------------------------------------------------------------------------- timm

def timm_pretrained_source(pretrained_cfg: Dict[str, Any]) -> Tuple[str, Any]:
    """(kind, location) of the weights timm loads for ``pretrained_cfg``, in timm's own order of
    sources (a state dict, a file, the hub, a URL). Falls back to that order, read from the
    config, where the private resolver is missing."""
    try:
        from timm.models._builder import _resolve_pretrained_source
        return _resolve_pretrained_source(dict(pretrained_cfg))
    except (ImportError, AssertionError):
        order = (('state_dict', 'state_dict'), ('file', 'file'), ('hf-hub', 'hf_hub_id'), ('url', 'url'))
        return next(((kind, pretrained_cfg[key]) for kind, key in order if pretrained_cfg.get(key)), ('', ''))


def feature_take_indices(num_features: int, indices) -> Tuple[List[int], int]:
    """timm's own resolution of ``out_indices`` (int N = the last N; negatives from the end) ->
    (absolute indices, the largest). In ``timm.models._features.__all__``, not re-exported by
    ``timm.models``."""
    from timm.models._features import feature_take_indices as take
    return take(num_features, indices)


def _dinov3_rope_class():
    try:
        from timm.layers.pos_embed_sincos import RotaryEmbeddingDinoV3
    except ImportError:  # a timm without DINOv3
        return None
    return RotaryEmbeddingDinoV3


def rope_embedding(rope: torch.nn.Module, grid: Tuple[int, int]) -> torch.Tensor:
    """The rotary embedding timm's ``rope.get_embed(shape=grid)`` gives, (h * w, 2 * dim) as
    ``cat([sin, cos])``. For DINOv3's rope with symbolic sizes (``torch.export``), the same float32
    values from tensor ops: timm normalises the coordinates by ``float(H)``, which would freeze
    the example's grid into the graph."""
    cls = _dinov3_rope_class()
    if cls is None or not isinstance(rope, cls) or all(isinstance(s, int) for s in grid):
        return rope.get_embed(shape=list(grid))
    if rope.training and rope.aug_active:
        raise RuntimeError("RotaryEmbeddingDinoV3 with coordinate augmentation in training mode "
                           "cannot be traced: export the model in eval mode")
    coords = _centered_coords(rope, grid).flatten(0, -2)  # (h * w, 2)
    sin, cos = rope._get_pos_embed_from_coords(coords)
    return torch.cat([sin, cos], dim=-1)


def _centered_coords(rope: torch.nn.Module, grid) -> torch.Tensor:
    """timm's ``_build_grid(grid_type='centered')`` of ``RotaryEmbeddingDinoV3`` without a Python
    float of the sizes: (H, W, 2) in [-1, 1], the same float32 values (0.5-centred cell indices
    plus the grid offset, divided by the size: exact in float32)."""
    h, w = grid
    if rope.grid_indexing == 'xy':
        h, w = w, h
    mode = rope.normalize_coords
    if mode == 'separate':
        denoms = (h, w)
    elif mode in ('max', 'min'):
        pick = torch.sym_max if mode == 'max' else torch.sym_min
        denoms = (pick(h, w),) * 2
    else:
        raise ValueError(f"RotaryEmbeddingDinoV3 normalize_coords={mode!r} cannot be traced")
    axes = [(torch.arange(s, dtype=torch.float32) + 0.5 + rope.grid_offset) / d
            for s, d in zip((h, w), denoms)]
    return 2.0 * torch.stack(torch.meshgrid(axes, indexing=rope.grid_indexing), dim=-1) - 1.0


# ------------------------------------------------------------------------------------ numpy

def numpy_pickle_globals() -> List[Any]:
    """What a pickled numpy array, scalar or dtype refers to (data only, no code), for
    ``torch.serialization.safe_globals``: numpy 2 pickles ``numpy._core.multiarray`` names and
    ``numpy.dtypes.*DType`` classes, numpy 1.x ``numpy.core.multiarray`` names."""
    import numpy as np
    found: List[Any] = [np.ndarray, np.dtype]
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        for name in ('scalar', '_reconstruct'):
            try:
                found.append(getattr(__import__(module, fromlist=[name]), name))
            except (ImportError, AttributeError):
                pass
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes is not None:
        found += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    found += [type(np.dtype(t)) for t in ('float64', 'float32', 'int64', 'int32', 'bool', 'uint8')]
    return list(dict.fromkeys(found))  # in order, once each
