"""Import mmseg without the onedl fork's stub notice on standard output.

onedl-mmsegmentation and onedl-mmpretrain try to import an optional private package (``onedl``)
when their ``datasets`` package is imported, and on failure call mmengine's ``print_log(...,
level=DEBUG)`` without a logger, which is a plain ``print``: every ``import vitadapter`` would
write "Could not import OneDL" into the user's output (and into anything parsing it, such as
``vitadapter-info --list``). :func:`muted_stub_notices` drops exactly those lines while the glue
imports mmseg; everything else printed passes through unchanged. Upstream mmseg prints nothing
there, so on that stack this changes nothing.

The same block mutes mmcv's import-time warning that its compiled ``MultiScaleDeformableAttention``
is missing ("install mmcv rather than mmcv-lite"): on the fork without compiled ops that is the
intended install, and vitadapter's deformable attention is its own PyTorch code. Code that does
build mmcv's class still gets mmcv's error at construction.
"""
import contextlib
import io
import sys
import warnings

STUB_NOTICES = ('Could not import OneDL',)
MISSING_OPS_WARNING = r'Fail to import ``MultiScaleDeformableAttention``'


@contextlib.contextmanager
def muted_stub_notices():
    """Capture stdout inside the block; re-print every line but the fork's stub notices."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), warnings.catch_warnings():
            warnings.filterwarnings('ignore', message=MISSING_OPS_WARNING, category=UserWarning)
            yield
    finally:
        kept = [line for line in captured.getvalue().splitlines(keepends=True)
                if line.rstrip('\n') not in STUB_NOTICES]
        sys.stdout.write(''.join(kept))
