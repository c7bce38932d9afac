"""Converting a checkpoint of any supported source to a timm-layout file (``vitadapter-convert``).

Without a target model the conversion is the layout only: names, fused q/k/v, dropped extras; no
resizing. The layouts timm itself converts (official DINOv2 and DINOv3, also reached from HF
Dinov2 and DINOv3ViTModel) run through timm's ``checkpoint_filter_fn`` with a weightless model
shell of the checkpoint's own geometry (:attr:`WeightFormat.shell`; a DINOv3 shell has q/v
biases iff the checkpoint's are non-zero). With a model (``model=``), its filter runs as when
loading, so the result is also resized to that model's grid and patch size.
"""
import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
import torch.nn as nn

from .formats import UNKNOWN, WeightFormat, detect_format, key_patterns, split_vit
from .loading import OUTSIDE_VIT, CheckpointLike, apply_timm_filter, wrong_variant_error
from .reading import Checkpoint, CheckpointError, read_checkpoint

StateDict = Dict[str, torch.Tensor]
EXPORT_FORMATS = ('timm', 'safetensors')


@dataclass
class ConvertedCheckpoint:
    """A checkpoint converted to timm layout, and what the conversion did."""
    state_dict: StateDict
    source: str
    format: WeightFormat
    prefix: str = ''
    dropped: Dict[str, List[str]] = field(default_factory=dict)
    placeholders: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.source}: {self.format.title} layout"
                 + (f", ViT under {self.prefix!r}" if self.prefix else '')
                 + f" -> {len(self.state_dict)} timm-layout tensors: {describe_vit(self.state_dict)}"]
        if self.placeholders:
            lines.append(f"  pickled objects replaced by inert placeholders (nothing was run): "
                         f"{', '.join(self.placeholders)}")
        for reason, keys in self.dropped.items():
            lines.append(f"  dropped, {reason}: {len(keys)}: {key_patterns(keys, limit=4)}")
        lines += [f"  note: {note}" for note in self.notes]
        return '\n'.join(lines)


def describe_vit(state_dict: StateDict) -> str:
    """One line on a timm-layout ViT state dict: blocks, width, patch, position grid, tokens."""
    blocks = {int(m.group(1)) for k in state_dict if (m := re.match(r'blocks\.(\d+)\.', k))}
    parts = [f"{len(blocks)} blocks" + (f" (0-{max(blocks)})" if blocks and len(blocks) != max(blocks) + 1 else '')]
    patch = state_dict.get('patch_embed.proj.weight')
    if patch is not None and patch.ndim == 4:
        parts.append(f"width {patch.shape[0]}, patch {patch.shape[-2]}x{patch.shape[-1]}")
    pos = state_dict.get('pos_embed')
    if pos is not None:
        n = pos.shape[1]
        side = next((s for s in (math.isqrt(n), math.isqrt(max(n - 1, 0))) if s * s in (n, n - 1)), None)
        parts.append(f"{n} positions" + (f" ({side}x{side} grid{' + class' if side * side == n - 1 else ''})"
                                         if side else ''))
    if 'cls_token' in state_dict:
        parts.append('class token')
    if 'reg_token' in state_dict:
        parts.append(f"{state_dict['reg_token'].shape[1]} register tokens")
    if any(k.endswith('.attn.q_bias') for k in state_dict):
        parts.append('q/v biases')
    if any(k.endswith('.mlp.fc1_g.weight') for k in state_dict):
        parts.append('SwiGLU FFNs')
    parts.append('final norm' if 'norm.weight' in state_dict else 'no final norm')
    return ', '.join(parts)


def convert_checkpoint(checkpoint: CheckpointLike, prefix: Optional[str] = None,
                       model: Optional[nn.Module] = None,
                       pickled_objects: str = 'refuse') -> ConvertedCheckpoint:
    """Any supported checkpoint -> :class:`ConvertedCheckpoint` in timm layout.

    prefix: where the ViT's keys start inside the checkpoint (found from the patch embedding
    when None). model: a timm model whose ``checkpoint_filter_fn`` finishes the conversion (and
    resizes to it); needed only for layouts that only timm's model filters understand.
    pickled_objects: 'placeholder' reads training checkpoints (mmengine's) that pickle other
    objects beside the tensors, without running any of them (see :mod:`.reading`).
    """
    if isinstance(checkpoint, Checkpoint):
        ck = checkpoint
    elif isinstance(checkpoint, dict):
        ck = Checkpoint(dict(checkpoint), 'state dict')
    else:
        ck = read_checkpoint(checkpoint, pickled_objects)
    vit, found_prefix, outside = split_vit(ck.state_dict, prefix)
    fmt = detect_format(vit)
    conversion = fmt.convert(vit)
    if model is None and fmt.shell is not None:
        model = fmt.shell(conversion.state_dict)  # the checkpoint's own geometry: no resizing
    if model is not None and fmt.fit_model is not None:
        problems = fmt.fit_model(conversion, model)
        if problems:
            raise wrong_variant_error(ck.source, fmt, problems)
    state_dict = conversion.state_dict
    if model is not None:
        state_dict = apply_timm_filter(model, state_dict, fmt.pos_embed_interp)
    elif fmt is UNKNOWN:
        raise CheckpointError(
            f"{ck.source}: unknown checkpoint layout ({key_patterns(list(vit), 8)}); give the timm "
            f"model it is for (--model NAME) so its own checkpoint_filter_fn can try to convert it")
    dropped = {}
    if outside:
        dropped[f"{OUTSIDE_VIT} (which is under {found_prefix!r})"] = outside
    dropped.update(conversion.dropped)
    return ConvertedCheckpoint(dict(state_dict), ck.source, fmt, found_prefix, dropped,
                               ck.placeholders, conversion.notes)


def save_state_dict(state_dict: StateDict, path, to: Optional[str] = None) -> str:
    """Write a state dict: ``to='safetensors'`` (tensors only, never pickled) or ``'timm'``
    (``torch.save`` of a plain dict, what timm's ``pretrained_cfg_overlay=dict(file=...)`` and
    ``checkpoint=`` read). None picks by the file suffix. Returns the format written."""
    path = os.fspath(path)
    to = to or ('safetensors' if path.endswith('.safetensors') else 'timm')
    if to not in EXPORT_FORMATS:
        raise ValueError(f"to={to!r} is not one of {EXPORT_FORMATS}")
    tensors = {k: v.detach().contiguous().clone() for k, v in state_dict.items()}
    if to == 'safetensors':
        from safetensors.torch import save_file
        save_file(tensors, path, metadata={'format': 'pt'})
    else:
        torch.save(tensors, path)
    return to
