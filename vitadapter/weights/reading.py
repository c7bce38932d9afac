"""Reading checkpoints safely: files (.pth/.pt/.bin/.safetensors) and Hugging Face model folders.

Nothing pickled is ever executed. ``.safetensors`` files hold tensors only; everything else is read
with ``torch.load(weights_only=True)``, which refuses any class outside torch's allowlist. Files
that also pickle other objects (an mmengine training checkpoint stores its message hub's
``HistoryBuffer``, numpy arrays and dtypes) are refused by default; with
``pickled_objects='placeholder'`` each such object is replaced by an inert :class:`Placeholder`
(the foreign class is never imported, no code of it runs) and the tensors are kept.

Wrappers that training frameworks add are removed (``{'state_dict': ...}``, ``{'model': ...}``,
``module.`` prefixes from DDP).
"""
import json
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

import torch

WRAPPER_KEYS = ('state_dict', 'model', 'module', 'state_dict_ema', 'model_ema')
# A Hugging Face model folder: single-file weights first, then sharded ones (index.json).
HF_WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')
HF_INDEX_FILES = ('model.safetensors.index.json', 'pytorch_model.bin.index.json')
PICKLED_OBJECTS = ('refuse', 'placeholder')


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not fit the model."""


@dataclass
class Checkpoint:
    """A checkpoint's tensors and what was learnt reading it.

    state_dict: name -> tensor, wrappers removed. source: the path read. hf_config: the
    ``config.json`` of a Hugging Face model folder (or beside a weights file), else None.
    placeholders: pickled globals replaced by inert placeholders (``pickled_objects='placeholder'``).
    """
    state_dict: Dict[str, torch.Tensor]
    source: str
    hf_config: Optional[dict] = None
    placeholders: List[str] = field(default_factory=list)


class Placeholder:
    """Stands in for any pickled object that is not a tensor: takes any arguments, keeps nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):  # dict subclasses are rebuilt item by item
        pass

    def append(self, item):  # list subclasses too
        pass

    def extend(self, items):
        pass


def _placeholder_getattr(*args):
    """Stands in for ``builtins.getattr`` (pickles reach module attributes through it)."""
    return Placeholder


def _torch_load(path: str, pickled_objects: str) -> tuple:
    """(object, replaced global names) read with ``weights_only=True``."""
    if pickled_objects == 'refuse':
        return torch.load(path, map_location='cpu', weights_only=True), []
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    stand_ins = [(Placeholder, f'{Placeholder.__module__}.Placeholder')]
    stand_ins += [(_placeholder_getattr if name == 'builtins.getattr' else Placeholder, name)
                  for name in unsafe]
    with torch.serialization.safe_globals(stand_ins):
        return torch.load(path, map_location='cpu', weights_only=True), list(unsafe)


def _unsafe_globals(path: str) -> List[str]:
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not a zip checkpoint, or an old torch: nothing more to say
        return []


def _reason(err: Exception) -> str:
    """The informative line of a torch/safetensors error (torch's weights-only errors start with
    generic advice)."""
    lines = [re.sub(r'\x1b\[[0-9;]*m', '', line).strip() for line in str(err).splitlines()]
    lines = [line for line in lines if line] or ['']
    key = next((line for line in lines if 'Unsupported global' in line or 'is blocked' in line), lines[0])
    return key.replace('WeightsUnpickler error: ', '').rstrip('.')


def read_file(path: str, pickled_objects: str = 'refuse') -> tuple:
    """(raw object, replaced global names) of one weights file, read safely."""
    if pickled_objects not in PICKLED_OBJECTS:
        raise ValueError(f"pickled_objects={pickled_objects!r} is not one of {PICKLED_OBJECTS}")
    try:
        if path.endswith('.safetensors'):
            from safetensors.torch import load_file
            return load_file(path, device='cpu'), []
        return _torch_load(path, pickled_objects)
    except Exception as err:  # torch/safetensors raise many types; all mean "cannot read it"
        unsafe = _unsafe_globals(path) if not path.endswith('.safetensors') else []
        objects = (f" It pickles objects besides tensors ({', '.join(unsafe)}): "
                   f"`vitadapter-convert {path} OUT.safetensors` (or read_checkpoint(path, "
                   f"pickled_objects='placeholder')) extracts the tensors without running any of it."
                   if unsafe else '')
        raise CheckpointError(
            f"could not read checkpoint {path!r}: {type(err).__name__}: {_reason(err)}. "
            f"Expected a state dict saved with torch.save or safetensors (files that need arbitrary "
            f"pickled objects are refused: they are read with weights_only=True).{objects}") from err


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


def _read_json(path: str) -> Optional[dict]:
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def hf_weight_files(folder: str) -> List[str]:
    """The weight files of a Hugging Face model folder (one, or the shards of an index)."""
    for name in HF_WEIGHT_FILES:
        if os.path.isfile(os.path.join(folder, name)):
            return [os.path.join(folder, name)]
    for name in HF_INDEX_FILES:
        index = _read_json(os.path.join(folder, name))
        if index is not None:
            shards = sorted(set(index.get('weight_map', {}).values()))
            return [os.path.join(folder, shard) for shard in shards]
    seen = sorted(os.listdir(folder))[:12]
    raise CheckpointError(
        f"checkpoint folder {folder!r} is not a Hugging Face model folder: it has none of "
        f"{HF_WEIGHT_FILES + HF_INDEX_FILES} (it holds {seen}). Pass the weights file itself, "
        f"or the folder save_pretrained() wrote")


def read_checkpoint(path, pickled_objects: str = 'refuse') -> Checkpoint:
    """Read a weights file or a Hugging Face model folder into a :class:`Checkpoint`."""
    path = os.fspath(path)
    if os.path.isdir(path):
        files, config_path = hf_weight_files(path), os.path.join(path, 'config.json')
    elif os.path.isfile(path):
        files, config_path = [path], os.path.join(os.path.dirname(path), 'config.json')
    else:
        raise FileNotFoundError(f"checkpoint file {path!r} does not exist (checkpoint= must be a "
                                f"local .pth, .bin or .safetensors file, or a Hugging Face model "
                                f"folder)")
    state_dict: Dict[str, torch.Tensor] = OrderedDict()
    replaced: List[str] = []
    for file in files:
        data, names = read_file(file, pickled_objects)
        state_dict.update(unwrap_state_dict(data, file))
        replaced += [n for n in names if n not in replaced]
    # config.json of a model folder, or beside a file with the name save_pretrained() gives it
    hf_config = _read_json(config_path) if os.path.isdir(path) or \
        os.path.basename(path) in HF_WEIGHT_FILES else None
    return Checkpoint(state_dict, path, hf_config, replaced)


def read_state_dict(path, pickled_objects: str = 'refuse') -> Dict[str, torch.Tensor]:
    """Read a tensor state dict from a ``.pth``/``.pt``/``.bin``/``.safetensors`` file or an HF folder."""
    return read_checkpoint(path, pickled_objects).state_dict
