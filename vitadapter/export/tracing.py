"""Making a backbone traceable with symbolic input sizes (``torch.export`` with dynamic shapes,
which the ONNX export uses), and naming the part of a model that a trace fails in.

vitadapter's own code computes every size from the input's shape in integer arithmetic and takes
shortcuts only on plain ints (see :mod:`vitadapter.layers.geometry`), so one traced graph serves every
input size. What remains is in timm:

* timm's DINOv3 rotary embedding (``RotaryEmbeddingDinoV3``) normalises its coordinates by
  ``float(H)`` and ``float(W)``: a Python float of the grid size, which would freeze the grid of
  the example input into the graph. The trunk computes the same coordinates from tensor ops when
  the sizes are symbolic (:func:`vitadapter.compat.rope_embedding`).
* timm's absolute position-embedding resampling skips itself when the grid equals the stored one;
  recent timm skips that shortcut while exporting (``is_exporting`` in ``timm.layers.pos_embed``;
  timm 1.0.31 does); an older timm cannot export with dynamic sizes (:func:`check_timm_exportable`).

And in torch: the exporter decomposes ``nn.AdaptiveAvgPool2d`` (UperNet's pooling pyramid) only
for input sizes that are multiples of the output size; :func:`traceable` gives those modules an
equivalent pair of averaging matrices (:func:`adaptive_avg_pool2d`) while exporting.
"""
import contextlib
import functools
from typing import Iterator, List

import torch
import torch.nn as nn
import torch.nn.functional as F


def check_timm_exportable() -> None:
    """Raise a RuntimeError when the installed timm resamples position embeddings with a Python
    shortcut on the input size even while exporting (timm without ``layers.is_exporting``)."""
    import timm
    from timm.layers import pos_embed
    if not hasattr(pos_embed, 'is_exporting'):
        raise RuntimeError(f"timm {timm.__version__} resamples position embeddings with a branch on "
                           f"the input size that freezes it into an exported graph; ONNX export with "
                           f"dynamic height and width needs a timm whose resample_abs_pos_embed "
                           f"checks timm.layers.is_exporting (pip install -U timm)")


def adaptive_avg_pool2d(x: torch.Tensor, output_size) -> torch.Tensor:
    """``F.adaptive_avg_pool2d`` as two averaging matrices (output cell i of n inputs averages
    inputs ``floor(i n / o)`` to ``ceil((i + 1) n / o) - 1``, PyTorch's windows), traceable with
    symbolic input sizes: the exporter's own decomposition needs the input size to be a multiple
    of the output size (UperNet's pooling pyramid, scales 1, 2, 3, 6)."""
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    out_h = x.shape[-2] if out_h is None else out_h
    out_w = x.shape[-1] if out_w is None else out_w
    if (out_h, out_w) == (1, 1):
        return x.mean((-2, -1), keepdim=True)

    def averaging(n, o) -> torch.Tensor:  # (o, n)
        i = torch.arange(o, dtype=torch.long, device=x.device)[:, None]
        j = torch.arange(n, dtype=torch.long, device=x.device)[None, :]
        start = (i * n) // o
        end = ((i + 1) * n + o - 1) // o
        inside = (j >= start) & (j < end)
        return inside.to(x.dtype) / (end - start).to(x.dtype)

    x = F.linear(x, averaging(x.shape[-1], out_w))  # (..., h, out_w)
    return F.linear(x.transpose(-1, -2), averaging(x.shape[-2], out_h)).transpose(-1, -2)


def _adaptive_pools(model: nn.Module) -> List[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]


@contextlib.contextmanager
def traceable(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, ``model`` traces with symbolic input sizes (see the module docstring);
    its outputs in eager mode are unchanged (checked by the ONNX tests)."""
    check_timm_exportable()
    pools = _adaptive_pools(model)
    for pool in pools:
        pool.forward = functools.partial(adaptive_avg_pool2d, output_size=pool.output_size)
    try:
        yield model
    finally:
        for pool in pools:
            pool.__dict__.pop('forward', None)


class ModuleTracker:
    """Records which submodules are running, so that an error raised while tracing names the
    innermost part of the model it came from (``with ModuleTracker(model) as t: ...``,
    ``t.failing_part()``)."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.stack: List[str] = []
        self.last_failure: List[str] = []
        self._handles = []

    def __enter__(self) -> 'ModuleTracker':
        for name, module in self.model.named_modules():
            self._handles.append(module.register_forward_pre_hook(self._enter(name)))
            self._handles.append(module.register_forward_hook(self._leave(name), always_call=True))
        return self

    def _enter(self, name: str):
        def hook(module, args):
            self.stack.append(f"{name or '<model>'} ({type(module).__name__})")
        return hook

    def _leave(self, name: str):
        def hook(module, args, output):
            if self.stack:
                if len(self.stack) > len(self.last_failure) and output is None:
                    self.last_failure = list(self.stack)
                self.stack.pop()
        return hook

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def failing_part(self) -> str:
        """The chain of modules that were running when the error was raised ('' if none)."""
        chain = self.last_failure or self.stack
        return ' > '.join(chain)
