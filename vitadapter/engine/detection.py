"""Detection configs import this module: it checks that mmdet can build detectors here, then
registers vitadapter's classes in mmdet's registries. Detection configs list it after vitadapter::

    custom_imports = dict(imports=['vitadapter', 'vitadapter.engine.detection'],
                          allow_failed_imports=False)

Where mmdet is absent or mmcv has no compiled ops (the default "onedl" stack), the import raises
:class:`~vitadapter.engine.detection_stack.DetectionStackError` naming what is missing and the
stack to use, instead of a failure deep in mmengine's registry when the detector is built.
"""
from .detection_stack import DetectionStackError, require_detection_stack
from .registry import register_mmdet

require_detection_stack()
if not register_mmdet():  # pragma: no cover (the check above imported mmdet)
    raise DetectionStackError("mmdet imports but its registry does not: reinstall mmdet")
