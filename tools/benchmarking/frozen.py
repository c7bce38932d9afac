"""Frozen vs fine-tuned: each frozen-trunk variant's peak training memory over that of the same
model with a trainable trunk (``simple-frozen`` / ``simple``: ViTPyramid; ``adapter-extractors`` /
``adapter``: the DINOv3 extractor-only adapter on a frozen trunk / the full ViT-Adapter)."""
from typing import List

from .catalogue import FROZEN_PAIRS


def add_frozen_ratios(rows: List[dict]) -> None:
    """Rows of one size: give every frozen variant measured beside its fine-tuned counterpart
    ``finetuned`` (that label), ``peak_vs_finetuned`` and ``call_vs_finetuned`` (MiB ratios)."""
    by_key = {(r['variant'], r['dtype'], r['compiled']): r for r in rows}
    for r in rows:
        other = by_key.get((FROZEN_PAIRS.get(r['variant']), r['dtype'], r['compiled']))
        if other is None or 'peak_mib' not in r:
            continue
        r.update(finetuned=other['label'], peak_vs_finetuned=r['peak_mib'] / other['peak_mib'],
                 call_vs_finetuned=r['call_mib'] / other['call_mib'])


def frozen_lines(rows: List[dict]) -> List[str]:
    """The printed comparison: one line per frozen variant with its counterpart (none without)."""
    pairs = [r for r in rows if 'peak_vs_finetuned' in r]
    if not pairs:
        return []
    trainable = {r['label']: r['trainable'] for r in rows}
    width = max(len(f"{r['label']} / {r['finetuned']}") for r in pairs)
    lines = ['frozen vs fine-tuned (memory of a training step, frozen / fine-tuned):']
    for r in pairs:
        lines.append(f"  {r['label'] + ' / ' + r['finetuned']:<{width}}  peak {r['peak_vs_finetuned']:.2f}"
                     f"  call {r['call_vs_finetuned']:.2f}  trainable params "
                     f"{r['trainable'] / 1e6:.2f} M / {trainable[r['finetuned']] / 1e6:.2f} M")
    return lines
