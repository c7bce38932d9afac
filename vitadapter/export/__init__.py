"""Export of vitadapter models out of PyTorch (ONNX; the ``onnx`` extra).

``export_onnx(backbone, 'backbone.onnx')`` writes a graph with dynamic batch, height and width;
``check_onnx('backbone.onnx', backbone, [images])`` compares onnxruntime's outputs with PyTorch's.
The core imports nothing beyond torch: onnx, onnxscript and onnxruntime load only when used.
"""
from .onnx import (ONNX_EXTRA, OnnxExportError, Parity, check_onnx, default_min_size, export_onnx,
                   onnx_session, run_onnx)
from .tracing import traceable

__all__ = ['ONNX_EXTRA', 'OnnxExportError', 'Parity', 'check_onnx', 'default_min_size', 'export_onnx',
           'onnx_session', 'run_onnx', 'traceable']
