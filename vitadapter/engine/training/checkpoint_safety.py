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

Everything else is still refused. Both steps change the process (torch's allowlist, a ``copyreg``
entry for ``HistoryBuffer``), so they happen only where a runner asks for them: the
``SafeCheckpointsHook`` (in every vitadapter config through ``configs/_base_/default_runtime.py``,
and added by vitadapter's tools) runs them in ``before_run``, which mmengine's runners call before
they load or resume a checkpoint and before they save one; mmseg's stock tools therefore resume
and test safely too. On mmengine releases that retry a refused load with ``weights_only=False``
(onedl-mmengine 0.10.8+ does, with a warning), the allowlist is what keeps that unsafe retry from
happening.
"""
import collections
import copyreg

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.registry import HOOKS

from ...compat import numpy_pickle_globals

SAFE_CHECKPOINTS_HOOK = 'SafeCheckpointsHook'


def rebuild_history_buffer(log_history: list, count_history: list, max_length: int) -> HistoryBuffer:
    """Inverse of :func:`_reduce_history_buffer`."""
    return HistoryBuffer(log_history, count_history, max_length)


def _reduce_history_buffer(buffer: HistoryBuffer):
    log_history, count_history = buffer.data
    return rebuild_history_buffer, (np.asarray(log_history).tolist(),
                                    np.asarray(count_history).tolist(), buffer.max_length)


def mmengine_checkpoint_globals() -> list:
    """What vitadapter-saved mmengine/mmseg checkpoints pickle besides tensors and containers."""
    return [rebuild_history_buffer, collections.OrderedDict, *numpy_pickle_globals()]


def allow_mmengine_checkpoint_globals() -> None:
    """Make mmengine checkpoints saved from now on, and their resumption, weights_only-safe
    (idempotent: what is already allowed is not added again)."""
    copyreg.pickle(HistoryBuffer, _reduce_history_buffer)
    if hasattr(torch.serialization, 'add_safe_globals'):
        allowed = set(map(id, torch.serialization.get_safe_globals()))
        missing = [g for g in mmengine_checkpoint_globals() if id(g) not in allowed]
        if missing:
            torch.serialization.add_safe_globals(missing)


@HOOKS.register_module(name=SAFE_CHECKPOINTS_HOOK)
class SafeCheckpointsHook(Hook):
    """``custom_hooks=[dict(type='SafeCheckpointsHook')]``: weights_only-safe checkpoints for the
    runner (see the module docstring). It runs first, before the runner loads or resumes."""

    priority = 'HIGHEST'

    def before_run(self, runner) -> None:
        allow_mmengine_checkpoint_globals()
