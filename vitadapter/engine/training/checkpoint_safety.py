"""Resuming mmengine checkpoints under torch >= 2.6 (``torch.load(weights_only=True)``).

An mmengine checkpoint stores, beside tensors, the message hub: ``HistoryBuffer`` objects with
numpy arrays, numpy scalars, and (through ``HistoryBuffer.__getstate__``) references to its
statistics methods, which pickle as ``getattr(HistoryBuffer, 'min')``. torch >= 2.6 refuses all
of that, so ``--resume`` fails. Loading with ``weights_only=False`` would run arbitrary pickled
code from any file; allowing ``getattr`` would open attribute access on every allowed object.
Instead:

* ``HistoryBuffer`` is pickled through a reducer of ours that stores plain lists and the buffer
  length, rebuilt by one small function, :func:`rebuild_history_buffer`;
* that function and the numpy pieces older checkpoints contain (arrays, scalars, dtypes) are
  added to torch's allowlist with ``torch.serialization.add_safe_globals``.

Everything else is still refused. Both steps run in :func:`allow_mmengine_checkpoint_globals`,
which ``import vitadapter`` calls when it registers the mmseg glue, so mmseg's stock tools (which
import vitadapter through the config's ``custom_imports``) resume and test safely too. On
mmengine releases that retry a refused load with ``weights_only=False`` (onedl-mmengine 0.10.8+
does, with a warning), the allowlist is what keeps that unsafe retry from happening.
"""
import collections
import copyreg

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

_done = False


def rebuild_history_buffer(log_history: list, count_history: list, max_length: int) -> HistoryBuffer:
    """Inverse of :func:`_reduce_history_buffer`."""
    return HistoryBuffer(log_history, count_history, max_length)


def _reduce_history_buffer(buffer: HistoryBuffer):
    return rebuild_history_buffer, (np.asarray(buffer._log_history).tolist(),
                                    np.asarray(buffer._count_history).tolist(), buffer.max_length)


def mmengine_checkpoint_globals() -> list:
    """What vitadapter-saved mmengine/mmseg checkpoints pickle besides tensors and containers."""
    # numpy 2: np._core (np.core is a deprecated alias); numpy 1.26 has a bare np._core stub
    numpy_core = np._core if hasattr(getattr(np, '_core', None), 'multiarray') else np.core
    allowed = [rebuild_history_buffer, collections.OrderedDict, numpy_core.multiarray._reconstruct,
               numpy_core.multiarray.scalar, np.ndarray, np.dtype]
    dtypes = getattr(np, 'dtypes', None)  # np.dtype('float64') pickles as numpy.dtypes.Float64DType
    if dtypes is not None:
        allowed += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return allowed


def allow_mmengine_checkpoint_globals() -> None:
    """Make mmengine checkpoints saved from now on, and their resumption, weights_only-safe."""
    global _done
    if _done:
        return
    copyreg.pickle(HistoryBuffer, _reduce_history_buffer)
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
    _done = True
