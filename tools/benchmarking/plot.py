"""``--plot``: seconds (and peak memory, GFLOP when measured) of every variant against the input size."""
import argparse
import math
import os
from typing import List


def write_plot(path: str, args: argparse.Namespace, rows: List[dict]) -> None:
    """Seconds (and peak MiB, GFLOP when measured) of every variant against the input size."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = [('seconds', 'seconds per call')]
    if 'peak_mib' in rows[0]:
        panels.append(('peak_mib', 'peak memory (MiB)'))
    if 'gflop' in rows[0]:
        panels.append(('gflop', 'GFLOP per call'))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    sizes = sorted({(r['height'], r['width']) for r in rows}, key=lambda s: s[0] * s[1])
    for ax, (key, title) in zip(axes[0], panels):
        for label in dict.fromkeys(r['label'] for r in rows):
            points = sorted(((r['height'] * r['width'], r[key]) for r in rows if r['label'] == label))
            ax.plot([math.sqrt(p) for p, _ in points], [v for _, v in points], marker='o', label=label)
        ax.set_xticks([math.sqrt(h * w) for h, w in sizes], [f"{h}x{w}" for h, w in sizes])
        ax.set_xlabel('input size (axis: square root of the pixel count)')
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{os.path.basename(args.config or args.model)}, batch {args.batch}, mode {args.mode}, "
                 f"{args.device}, {rows[0]['threads']} threads")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
