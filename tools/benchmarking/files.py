"""``--json`` and ``--csv``: the result rows written to files."""
import argparse
import csv
import json
from typing import List, Optional

CSV_FIELDS = ['label', 'variant', 'height', 'width', 'batch', 'mode', 'dtype', 'compiled',
              'channels_last', 'grad_checkpointing', 'device', 'threads', 'seconds', 'ratio',
              'images_per_s', 'first_seconds', 'gflop', 'flop_ratio', 'gflop_per_s', 'params', 'trainable',
              'peak_mib', 'call_mib', 'peak_ratio', 'call_ratio', 'finetuned', 'peak_vs_finetuned',
              'call_vs_finetuned', 'run', 'model']


def write_json(path: str, args: argparse.Namespace, rows: List[dict], machine: dict,
               extra: Optional[dict] = None) -> None:
    """The options, the ``machine`` record, all rows, per-variant dicts of the first size (of the
    first run, with ``--eomt-figures``: ``seconds``, ``ratio``, ``peak_mib``...), and ``extra``
    (``--eomt-figures``: ``figures``)."""
    first = [r for r in rows if (r['height'], r['width'], r.get('run'), r.get('model')) ==
             (rows[0]['height'], rows[0]['width'], rows[0].get('run'), rows[0].get('model'))]
    options = {k: v for k, v in vars(args).items() if k not in ('json', 'csv', 'plot')}
    result = dict(options, machine=machine, size=[rows[0]['height'], rows[0]['width']],
                  rows=[{k: v for k, v in r.items() if k != 'profile'} for r in rows], **(extra or {}))
    for key in ('seconds', 'ratio', 'images_per_s', 'gflop', 'flop_ratio', 'params', 'peak_mib', 'call_mib',
                'peak_ratio', 'call_ratio'):
        if key in first[0]:
            result[key] = {r['label']: r[key] for r in first}
    for key in ('peak_vs_finetuned', 'call_vs_finetuned'):  # frozen variants only
        if any(key in r for r in first):
            result[key] = {r['label']: r[key] for r in first if key in r}
    with open(path, 'w') as f:
        json.dump(result, f, indent=2, default=str)


def write_onnx_json(path: str, args: argparse.Namespace, result: dict, machine: dict) -> None:
    """``--onnx``: the options, the ``machine`` record and the comparison (``torch_s``,
    ``onnxruntime_s``, ``ratio``, ``max_rel_error``)."""
    options = {k: v for k, v in vars(args).items() if k not in ('json', 'csv', 'plot')}
    with open(path, 'w') as f:
        json.dump(dict(options, machine=machine, onnx=result), f, indent=2, default=str)


def write_csv(path: str, rows: List[dict]) -> None:
    """One line per size and variant, the columns of ``CSV_FIELDS``."""
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
