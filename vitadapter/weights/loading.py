"""Reading checkpoint files safely and loading them into a timm ViT with a compact report.

Files are read without running pickled code: ``.safetensors`` through safetensors, everything else
through ``torch.load(weights_only=True)``. Wrappers that training frameworks add are removed
(``{'state_dict': ...}``, ``{'model': ...}``, ``module.`` prefixes from DDP). The timm model's own
``checkpoint_filter_fn`` then adapts the state dict to the model (position embeddings resized to
its grid, patch embeddings resampled, original DINOv2 key names converted), so what timm can load,
vitadapter loads the same way.
"""
import os
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Mapping

import torch
import torch.nn as nn

WRAPPER_KEYS = ('state_dict', 'model', 'module', 'state_dict_ema', 'model_ema')
HEAD_PREFIXES = ('head.', 'fc_norm.', 'attn_pool.', 'head_drop.')


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not fit the model."""


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Read a tensor state dict from a ``.pth``/``.pt``/``.bin``/``.safetensors`` file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file {path!r} does not exist (checkpoint= must be a "
                                f"local .pth, .bin or .safetensors file)")
    try:
        if path.endswith('.safetensors'):
            from safetensors.torch import load_file
            data = load_file(path, device='cpu')
        else:
            data = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # torch/safetensors raise many types; all mean "cannot read it"
        raise CheckpointError(
            f"could not read checkpoint {path!r}: {type(err).__name__}: {str(err).splitlines()[0]}. "
            f"Expected a state dict saved with torch.save or safetensors (files that need arbitrary "
            f"pickled objects are refused: they are read with weights_only=True)") from err
    return unwrap_state_dict(data, path)


def unwrap_state_dict(data, source: str = 'checkpoint') -> Dict[str, torch.Tensor]:
    """Strip training-framework wrappers and DDP ``module.`` prefixes from a checkpoint."""
    while isinstance(data, Mapping):
        inner = next((data[k] for k in WRAPPER_KEYS if isinstance(data.get(k), Mapping)), None)
        if inner is None:
            break
        data = inner
    if not isinstance(data, Mapping) or not any(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{source} holds no tensors at its top level or under any of "
                              f"{WRAPPER_KEYS}: it is not a state dict")
    return OrderedDict((k[7:] if k.startswith('module.') else k, v)
                       for k, v in data.items() if isinstance(v, torch.Tensor))


def group_keys(keys: List[str], limit: int = 8) -> str:
    """'blocks.0.attn.qkv.weight', 'blocks.1.attn.qkv.weight' -> 'blocks.*.attn.qkv.weight (x2)'."""
    groups: Dict[str, int] = OrderedDict()
    for key in keys:
        pattern = re.sub(r'\.\d+\.', '.*.', key)
        groups[pattern] = groups.get(pattern, 0) + 1
    items = [f"{p} (x{n})" if n > 1 else p for p, n in groups.items()]
    more = f", ... {len(items) - limit} more" if len(items) > limit else ''
    return ', '.join(items[:limit]) + more


@dataclass
class LoadReport:
    """What a checkpoint load did, in a form that prints as a few lines."""
    source: str
    loaded: int = 0
    resized: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"loaded {self.loaded} tensors from {self.source}"]
        for name, keys in (('resized', self.resized), ('missing (left as initialised)', self.missing),
                           ('unexpected (not used)', self.unexpected),
                           ('ignored (classifier head)', self.ignored)):
            if keys:
                lines.append(f"  {name}: {len(keys)}: {group_keys(keys)}")
        return '\n'.join(lines)


def load_into_timm_model(model: nn.Module, state_dict: Dict[str, torch.Tensor], source: str,
                         strict: bool = False) -> LoadReport:
    """Load a timm-layout state dict into a timm model (before any pruning).

    The model module's ``checkpoint_filter_fn`` adapts the state dict first. Head keys are
    ignored (the trunk has no classifier). ``strict=True`` raises when trunk keys are missing.
    """
    original_shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    filter_fn = getattr(sys.modules[type(model).__module__], 'checkpoint_filter_fn', None)
    if filter_fn is not None:
        state_dict = filter_fn(state_dict, model)
    own = model.state_dict()
    report = LoadReport(source=source)
    report.ignored = [k for k in state_dict if k.startswith(HEAD_PREFIXES) and k not in own]
    usable = {k: v for k, v in state_dict.items() if k in own and k not in report.ignored}
    report.unexpected = [k for k in state_dict if k not in own and k not in report.ignored]
    report.missing = [k for k in own if k not in usable]
    report.resized = [k for k in usable if k in original_shapes and original_shapes[k] != tuple(usable[k].shape)]
    wrong = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
             for k, v in usable.items() if tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        raise CheckpointError(f"{source} does not fit {type(model).__name__} (is it for another "
                              f"model size?): {len(wrong)} shape mismatches, e.g. " + '; '.join(wrong[:3]))
    if strict and report.missing:
        raise CheckpointError(f"strict loading: {source} lacks {len(report.missing)} trunk tensors: "
                              f"{group_keys(report.missing)}")
    model.load_state_dict(usable, strict=False)
    report.loaded = len(usable)
    return report
