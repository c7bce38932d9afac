"""``--eomt-figures``: EoMT's four figures, the runs giving them one after another in one process
(each run's variants timed alternately, its table printed), then the figures against their targets:

  1. EoMT inference / the trunk alone (``trunk eomt``, forward), ViT-S/16 and ViT-B/16: at most
     1.25 and 1.2, and the time ratio within 1.1x of the FLOP ratio (time ratio / FLOP ratio in
     [1/1.1, 1.1]);
  2. EoMT inference / UperNet inference (``uper-segmentor eomt-segmentor``, forward,
     ``--segmentor-forward predict``: images to per-pixel classes), ViT-S/16: at most 0.4;
  3. EoMT training step / Mask2Former training step (``m2f-segmentor eomt-segmentor``, train),
     ViT-S/16: at most 0.6;
  4. peak training memory, EoMT / Mask2Former (the same run, ``--memory``): at most 0.6.

``--model`` or ``--config`` runs every figure on that trunk alone (the targets are ViT-S/16's and
ViT-B/16's: other trunks get none).
"""
import argparse
from typing import Callable, List, NamedTuple, Tuple

from .vit import trunk_spec

VIT_S, VIT_B = 'vit_small_patch16_224', 'vit_base_patch16_224'
EOMT_FIGURES_BATCH = 2
EOMT_FIGURES_LABEL_CLASSES = 10  # ADE20K: 10.5 object classes per image (Zhou et al., IJCV 2019)
TIME_PER_FLOP_TOLERANCE = 1.1


class Run(NamedTuple):
    """One benchmark run: its variants (the first is the baseline), mode, default trunks."""
    name: str
    variants: Tuple[str, str]
    mode: str
    segmentor_forward: str
    memory: bool
    models: Tuple[str, ...]


class Figure(NamedTuple):
    """A ratio of a run (``key`` of its second variant's row) and its targets by trunk."""
    number: int
    run: str
    what: str
    key: str
    targets: dict


RUNS = (Run('inference vs trunk', ('trunk', 'eomt'), 'forward', 'tensor', False, (VIT_S, VIT_B)),
        Run('inference vs UperNet', ('uper-segmentor', 'eomt-segmentor'), 'forward', 'predict', False,
            (VIT_S,)),
        Run('training vs Mask2Former', ('m2f-segmentor', 'eomt-segmentor'), 'train', 'tensor', True,
            (VIT_S,)))
FIGURES = (Figure(1, 'inference vs trunk', 'inference time', 'ratio', {VIT_S: 1.25, VIT_B: 1.2}),
           Figure(2, 'inference vs UperNet', 'inference time', 'ratio', {VIT_S: 0.4}),
           Figure(3, 'training vs Mask2Former', 'training-step time', 'ratio', {VIT_S: 0.6}),
           Figure(4, 'training vs Mask2Former', 'peak training memory', 'peak_ratio', {VIT_S: 0.6}))


def run_args(args: argparse.Namespace, run: Run, model) -> argparse.Namespace:
    """The options of ``run`` on ``model`` (None: the config's trunk)."""
    sub = argparse.Namespace(**vars(args))
    sub.variants, sub.mode, sub.segmentor_forward = list(run.variants), run.mode, run.segmentor_forward
    sub.memory = args.memory or run.memory
    if model is not None:
        sub.model = model
    return sub


def figures_of(rows: List[dict]) -> List[dict]:
    """Every figure measured in ``rows`` (those of the runs, tagged ``run`` and ``model``, the
    trunk's timm name, which the targets are keyed by)."""
    found = []
    for fig in FIGURES:
        run = next(x for x in RUNS if x.name == fig.run)
        for r in rows:
            if r.get('run') != fig.run or r['variant'] != run.variants[1] or fig.key not in r:
                continue
            target = fig.targets.get(r['model'])
            item = dict(figure=fig.number, what=fig.what, pair=f"{run.variants[1]} / {run.variants[0]}",
                        model=r['model'], height=r['height'], width=r['width'], value=r[fig.key],
                        target=target, met=None if target is None else r[fig.key] <= target)
            if fig.number == 1 and 'flop_ratio' in r:
                per_flop, tolerance = r['ratio'] / r['flop_ratio'], TIME_PER_FLOP_TOLERANCE
                item.update(flop_ratio=r['flop_ratio'], time_per_flop=per_flop,
                            time_per_flop_met=1 / tolerance <= per_flop <= tolerance)
            found.append(item)
    return found


def figure_lines(figures: List[dict]) -> List[str]:
    """The printed figures, one line each."""
    def verdict(met) -> str:
        return '' if met is None else (': met' if met else ': MISSED')
    lines = ['EoMT figures (value, target):']
    for f in figures:
        target = 'no target for this trunk' if f['target'] is None else f"target <= {f['target']:g}"
        line = (f"  {f['figure']}. {f['what']}, {f['pair']}, {f['model']}, {f['height']}x{f['width']}: "
                f"{f['value']:.2f} ({target}{verdict(f['met'])})")
        if 'time_per_flop' in f:
            line += (f"; FLOP ratio {f['flop_ratio']:.2f}, time / FLOP ratio {f['time_per_flop']:.2f} "
                     f"(target within {TIME_PER_FLOP_TOLERANCE:g}x{verdict(f['time_per_flop_met'])})")
        lines.append(line)
    return lines


def run_eomt_figures(args: argparse.Namespace,
                     run_tables: Callable[[argparse.Namespace], List[dict]]) -> Tuple[List[dict], List[dict]]:
    """Every run (``run_tables``: one run's tables, printed, -> its rows), then the figures
    printed; returns (every row, tagged ``run`` and ``model``; the figures)."""
    given = None if args.model is None and args.config is None else (args.model,)
    rows = []
    for run in RUNS:
        for model in given or run.models:
            sub = run_args(args, run, model)
            trunk = trunk_spec(sub).model_name
            rows += [dict(r, run=run.name, model=trunk) for r in run_tables(sub)]
    figures = figures_of(rows)
    print('\n'.join(figure_lines(figures)))
    return rows, figures
