"""Which checkpoint ``tools/train.py --resume`` resumes from, refusing incomplete files.

A run killed while writing a checkpoint leaves a truncated file; torch then fails deep in its
reader (``OSError: [Errno 22] Invalid argument``). A torch checkpoint is a zip archive whose
directory is written last, so a truncated one has none: :func:`is_complete` checks that cheaply.

* ``--resume`` alone: the newest complete checkpoint of the work dir (the one mmengine's
  ``last_checkpoint`` names when it is complete, else the newest complete ``iter_*.pth`` /
  ``epoch_*.pth``, with a warning naming the incomplete one); none complete: a fresh start
  (with a warning when incomplete ones were found).
* ``--resume CKPT``: that file, or an error naming the last complete checkpoint to use instead.
"""
import glob
import os
import re
import warnings
import zipfile
from typing import List, Optional


class ResumeError(ValueError):
    """The checkpoint asked for cannot be resumed from (the message says why and what to use)."""


def is_complete(path: str) -> bool:
    """Whether ``path`` is a whole torch checkpoint (a zip archive with its directory), or one in
    torch's pre-1.6 format (a pickle, whose end cannot be checked cheaply: taken as it is)."""
    if not os.path.isfile(path):
        return False
    if zipfile.is_zipfile(path):
        return True
    with open(path, 'rb') as f:
        return f.read(1) == b'\x80'  # a pickle's PROTO opcode; a cut zip starts with PK


def checkpoints(work_dir: str) -> List[str]:
    """The work dir's ``iter_*.pth`` and ``epoch_*.pth``, newest (highest number) first."""
    found = glob.glob(os.path.join(work_dir, 'iter_*.pth')) + glob.glob(os.path.join(work_dir, 'epoch_*.pth'))
    return sorted(found, key=_number, reverse=True)


def _number(path: str) -> int:
    match = re.search(r'_(\d+)\.pth$', path)
    return int(match.group(1)) if match else -1


def last_complete(work_dir: str) -> Optional[str]:
    """The newest complete checkpoint of the work dir (the one ``last_checkpoint`` names first),
    or None; an incomplete one found before it is named in a warning."""
    named = os.path.join(work_dir, 'last_checkpoint')
    candidates = []
    if os.path.isfile(named):
        with open(named) as f:
            candidates.append(f.read().strip())
    skipped = []
    for path in dict.fromkeys(candidates + checkpoints(work_dir)):
        if is_complete(path):
            if skipped:
                warnings.warn(f"{skipped[0]} is incomplete (a run killed while writing it?): "
                              f"resuming from {path}, the newest complete checkpoint")
            return path
        if os.path.exists(path):
            skipped.append(path)
    if skipped:
        warnings.warn(f"{', '.join(skipped)}: incomplete (a run killed while writing?), and no complete "
                      f"checkpoint is beside them: training starts from the beginning")
    return None


def resume_from(work_dir: str, requested: str) -> Optional[str]:
    """The checkpoint to resume from: ``requested`` ('auto' = the newest complete one, None when
    the work dir has none) checked whole."""
    if requested == 'auto':
        return last_complete(work_dir)
    if not os.path.isfile(requested):
        raise ResumeError(f"--resume {requested}: no such file")
    if not is_complete(requested):
        other = last_complete(os.path.dirname(os.path.abspath(requested)))
        hint = f"resume from {other}, the last complete one, or give --resume alone" if other else \
            "train from the start (no complete checkpoint is beside it)"
        raise ResumeError(f"--resume {requested}: the file is incomplete or not a torch checkpoint "
                          f"(no zip directory: a run killed while writing it?); {hint}")
    return requested
