"""Can mmdet build detectors here? The check behind :mod:`vitadapter.engine.detection`.

mmdet's RoI heads and NMS run mmcv's compiled ops (``RoIAlign``, ``nms``), and ``import mmdet.models``
imports them. On a stack whose mmcv has no compiled ops (the default "onedl" stack), or without
mmdet, a detection config would otherwise fail deep inside mmengine's registry (``MaskRCNN is not
in the model registry``). :func:`require_detection_stack` raises :class:`DetectionStackError`
instead, naming what is missing and the stack that has it; detection configs call it by importing
:mod:`vitadapter.engine.detection`.

The error is not an ``ImportError`` on purpose: mmengine would replace an ``ImportError`` raised
while importing ``custom_imports`` by its own advice to fix ``PYTHONPATH``.
"""
import importlib
import importlib.util
from typing import Optional

UPSTREAM_INSTALL = "pip install 'vitadapter[mmseg-upstream]'"


class DetectionStackError(RuntimeError):
    """mmdet cannot build detectors in this environment (the message says why and what to use)."""


def detection_stack_problem() -> Optional[str]:
    """None where mmdet's detectors can be built here, else what stands in the way."""
    if importlib.util.find_spec('mmdet') is None:
        return 'mmdet is not installed'
    try:
        importlib.import_module('mmcv.ops')
    except Exception as error:  # onedl-mmcv: "No module named 'mmcv._ext'"
        return f'mmcv has no compiled ops (import mmcv.ops: {type(error).__name__}: {error})'
    try:
        importlib.import_module('mmdet.models')
    except Exception as error:
        return f'mmdet does not import (import mmdet.models: {type(error).__name__}: {error})'
    return None


def require_detection_stack() -> None:
    """Raise :class:`DetectionStackError` unless mmdet's detectors can be built here."""
    problem = detection_stack_problem()
    if problem is not None:
        raise DetectionStackError(
            f"detection needs mmdet 3.x with mmcv's compiled ops (RoIAlign, nms), and here "
            f"{problem}. Use the upstream stack (mmcv 2.1.0 built with its ops, mmdet 3.3.0): "
            f"install it in an environment of its own with `{UPSTREAM_INSTALL}` (mmcv 2.1.0 compiles "
            f"with MMCV_WITH_OPS=1) and train with mmdet's tools/train.py there. "
            f"Segmentation configs work on every stack.")

