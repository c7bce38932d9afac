"""Small tools the layout converters share: regex renaming, q/k/v fusion, dropped-key bookkeeping."""
import re
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

import torch

from .reading import CheckpointError

# why a mask token is dropped (the layouts of masked-image-modelling pretraining all have one)
MASK_TOKEN = 'mask token (masked-image modelling only)'

StateDict = Dict[str, torch.Tensor]
Rules = Sequence[Tuple[str, str]]


class Conversion:
    """A state dict being converted, and the keys taken out of it with the reason why.

    ``dropped`` maps a reason ('HF pooler (dense + tanh, never pretrained)') to the source keys;
    ``notes`` says what else the conversion had to decide.
    """

    def __init__(self, state_dict: StateDict):
        self.state_dict: StateDict = OrderedDict(state_dict)
        self.dropped: Dict[str, List[str]] = OrderedDict()
        self.notes: List[str] = []

    def drop(self, reason: str, keys: Sequence[str]) -> None:
        """Remove ``keys`` (those present) and record them under ``reason``."""
        present = [k for k in keys if k in self.state_dict]
        for k in present:
            del self.state_dict[k]
        if present:
            self.dropped.setdefault(reason, []).extend(present)

    def drop_matching(self, reason: str, pattern: str) -> None:
        """Remove the keys matching regex ``pattern`` (from the start) under ``reason``."""
        self.drop(reason, [k for k in self.state_dict if re.match(pattern, k)])


def rename(state_dict: StateDict, rules: Rules) -> StateDict:
    """Apply the first matching ``(pattern, replacement)`` regex rule to each key (full match);
    keys no rule matches are kept as they are."""
    out: StateDict = OrderedDict()
    compiled = [(re.compile(p), r) for p, r in rules]
    for key, value in state_dict.items():
        for pattern, replacement in compiled:
            if pattern.fullmatch(key):
                key = pattern.sub(replacement, key)
                break
        out[key] = value
    return out


def fuse_qkv(state_dict: StateDict, pattern: str, target: str,
             names: Tuple[str, str, str] = ('query', 'key', 'value'),
             zero_missing_bias: bool = False) -> StateDict:
    """Concatenate separate q, k, v projections into one (3C, C) qkv projection.

    pattern: a regex with groups (block, one of ``names``, 'weight'|'bias'), matched in full.
    target: the fused key, formatted with ``block`` and ``kind``
    ('blocks.{block}.attn.qkv.{kind}'). q/k/v weights (C, C) -> (3C, C); biases (C,) -> (3C,),
    in q, k, v order (the order timm's qkv layer and torch's in_proj use).
    zero_missing_bias: a block whose projections have some biases but not all (HF DINOv3 has no
    key bias) gets zeros for the missing ones; otherwise that is an error.
    """
    regex = re.compile(pattern)
    parts: Dict[Tuple[str, str], Dict[str, torch.Tensor]] = OrderedDict()
    out: StateDict = OrderedDict()
    for key, value in state_dict.items():
        match = regex.fullmatch(key)
        if match is None:
            out[key] = value
            continue
        block, which, kind = match.groups()
        parts.setdefault((block, kind), {})[which] = value
        out.setdefault(target.format(block=block, kind=kind), None)  # keep the block's key order
    for (block, kind), qkv in parts.items():
        weights = parts.get((block, 'weight'), {})
        if kind == 'bias' and zero_missing_bias and all(n in weights for n in names):
            qkv = {n: qkv[n] if n in qkv else weights[n].new_zeros(weights[n].shape[0]) for n in names}
        if len(qkv) != 3:
            raise CheckpointError(f"block {block} has only the {sorted(qkv)} {kind} projections; q, k "
                                  f"and v are all needed to build the fused qkv {kind}")
        out[target.format(block=block, kind=kind)] = torch.cat([qkv[n] for n in names])
    return out
