"""ONNX export of vitadapter backbones (and of any module taking images) with dynamic batch,
height and width, and its check with onnxruntime.

The graph comes from ``torch.export`` with symbolic batch, height and width (non-strict) and is
translated by ``torch.onnx.export(..., dynamo=True)``. Every size inside it (padding to whole
patches, position-embedding resampling, rotary tables, pyramid cropping, the adapter's reference
points) is computed from the input's shape in the graph, so one file serves every input size;
:func:`check_onnx` runs it with onnxruntime at other sizes and compares with PyTorch.

The onnx, onnxruntime and onnxscript packages are the ``onnx`` extra
(``pip install 'vitadapter[onnx]'``); they are imported only here, when used.
"""
import importlib
import warnings
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from .tracing import ModuleTracker, traceable

ONNX_EXTRA = "pip install 'vitadapter[onnx]' (onnx, onnxruntime, onnxscript)"
SizeT = Tuple[int, int]


class OnnxExportError(RuntimeError):
    """A model (part) that the exporter cannot turn into a size-independent graph."""


def require(name: str):
    """Import the optional package ``name`` or raise an ImportError naming the ``onnx`` extra."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ImportError(f"ONNX export needs the {name!r} package, which is not installed: "
                          f"{ONNX_EXTRA}") from e


def default_min_size(model: nn.Module) -> int:
    """The smallest height/width the graph is exported for: every output level keeps at least
    2 cells (``torch.export`` treats a size of 1 as a special case), i.e. the largest stride + 1."""
    info = getattr(model, 'feature_info', None)
    strides = info.reduction() if info is not None else [32]
    return int(max(strides)) + 1


def export_onnx(model: nn.Module, path: Union[str, Path], example: Optional[torch.Tensor] = None, *,
                image_size: SizeT = (96, 128), batch: int = 2, in_channels: int = 3,
                input_name: str = 'images', output_names: Optional[Sequence[str]] = None,
                min_size: Optional[int] = None, max_size: int = 8192, opset: int = 18) -> Path:
    """Export ``model`` (images (B, C, H, W) -> a tensor or a tuple of tensors) to ``path``.

    Batch, height and width are dynamic (height and width from ``min_size`` to ``max_size``;
    default min: :func:`default_min_size`). ``example`` (default: random (batch, in_channels,
    *image_size)) only drives the trace; a one-image example is traced as two copies of itself
    (``torch.export`` takes a size of 1 for a constant, which would fix the batch). The model is
    traced in eval mode. Raises :class:`OnnxExportError` naming the part of the model that cannot
    be exported.
    """
    require('onnxscript')
    require('onnx')
    check_inference_graph(model)
    path = Path(path)
    if example is None:
        example = torch.randn(batch, in_channels, *image_size)
    if example.ndim != 4:
        raise ValueError(f"the example must be images (B, C, H, W), got {tuple(example.shape)}")
    if example.shape[0] == 1:
        example = example.expand(2, -1, -1, -1).contiguous()
    min_size = default_min_size(model) if min_size is None else int(min_size)
    if min(example.shape[-2:]) < min_size:
        raise ValueError(f"the example's size {tuple(example.shape[-2:])} is below min_size={min_size}")
    dims = {0: torch.export.Dim('batch', min=1, max=4096),
            2: torch.export.Dim('height', min=min_size, max=max_size),
            3: torch.export.Dim('width', min=min_size, max=max_size)}
    was_training = model.training
    model.eval()
    try:
        exported = _trace(model, example, dims)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            program = torch.onnx.export(exported, (example,), dynamo=True, opset_version=opset,
                                        input_names=[input_name], output_names=output_names,
                                        verbose=False)
    finally:
        model.train(was_training)
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path))
    return path


def check_inference_graph(model: nn.Module) -> None:
    """Refuse a model whose traced graph would not compute what it does in eval mode now: an EoMT
    or PMT still annealing its masks (the exported graph is the inference one, without masks)."""
    for name, module in model.named_modules():
        probs = getattr(module, 'attn_mask_probs', None)
        if isinstance(probs, torch.Tensor) and bool((probs > 0).any()):
            raise OnnxExportError(
                f"{name or type(model).__name__}: its masked attention is still on (attn_mask_probs "
                f"{probs.tolist()}), which the exported inference graph leaves out; export a model "
                f"trained to the end of its mask annealing, or call set_mask_probabilities([0] * "
                f"{probs.numel()}) to export the unmasked model")


def _trace(model: nn.Module, example: torch.Tensor, dims: dict) -> 'torch.export.ExportedProgram':
    name = type(model).__name__
    with traceable(model), ModuleTracker(model) as tracker, torch.no_grad():
        try:
            return torch.export.export(model, (example,), dynamic_shapes=({**dims},), strict=False)
        except Exception as e:  # noqa: BLE001 (any exporter failure becomes one clear error)
            part = tracker.failing_part()
            first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
            if 'Constraints violated' in str(e) or 'resulted in a specialized value' in str(e):
                details = [line.strip() for line in str(e).splitlines() if line.strip().startswith('- ')]
                raise OnnxExportError(
                    f"{name}: the graph would only be valid for some input sizes: the model has a Python "
                    f"branch or int() on the input size that torch.export cannot keep symbolic "
                    f"({'; '.join(details[:3]) or first}). Export at a fixed size, or make that "
                    f"computation use tensor/integer arithmetic on x.shape") from e
            where = f" in {part}" if part else ''
            raise OnnxExportError(f"{name}: torch.export cannot trace{where}: {type(e).__name__}: "
                                  f"{first}") from e


class Parity(NamedTuple):
    """onnxruntime vs PyTorch for one input: the input size, and per output the largest
    absolute error and that error relative to the output's largest magnitude."""
    input_shape: Tuple[int, ...]
    max_abs: List[float]
    max_rel: List[float]

    def __str__(self) -> str:
        return (f"input {tuple(self.input_shape)}: max abs error {max(self.max_abs):.3g}, "
                f"max error / max |output| {max(self.max_rel):.3g} over {len(self.max_abs)} outputs")


def onnx_session(path: Union[str, Path], threads: Optional[int] = None):
    """An onnxruntime CPU inference session for ``path`` (``threads``: intra-op threads)."""
    ort = require('onnxruntime')
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])


def run_onnx(session, images: torch.Tensor) -> List[torch.Tensor]:
    """Run an onnxruntime session on images (B, C, H, W) -> its outputs as tensors."""
    feed = {session.get_inputs()[0].name: images.detach().cpu().numpy()}
    return [torch.from_numpy(y) for y in session.run(None, feed)]


def _as_list(out) -> List[torch.Tensor]:
    return [out] if isinstance(out, torch.Tensor) else [y for y in out]


def check_onnx(path: Union[str, Path], model: nn.Module, inputs: Sequence[torch.Tensor],
               session=None) -> List[Parity]:
    """Run ``path`` with onnxruntime on every input and compare with ``model`` in eval mode (fp32).
    Output shapes must match exactly (a graph frozen to the export size fails here)."""
    session = session or onnx_session(path)
    was_training = model.training
    model.eval()
    reports = []
    try:
        for x in inputs:
            with torch.no_grad():
                expected = _as_list(model(x))
            got = run_onnx(session, x)
            if len(got) != len(expected) or any(g.shape != e.shape for g, e in zip(got, expected)):
                raise OnnxExportError(
                    f"ONNX outputs {[tuple(g.shape) for g in got]} != PyTorch's "
                    f"{[tuple(e.shape) for e in expected]} for input {tuple(x.shape)}")
            abs_err = [float((g.double() - e.double()).abs().max()) if e.numel() else 0.0
                       for g, e in zip(got, expected)]
            scale = [float(e.double().abs().max()) if e.numel() else 0.0 for e in expected]
            reports.append(Parity(tuple(x.shape), abs_err,
                                  [a / s if s else a for a, s in zip(abs_err, scale)]))
    finally:
        model.train(was_training)
    return reports
