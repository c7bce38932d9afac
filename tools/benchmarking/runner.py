"""One input size: build every setting, time them alternately, count their FLOPs, profile and
measure memory as asked; one result row per setting, ratios (time, FLOPs, memory) to the first
setting."""
import argparse
from typing import Dict, List, Tuple

import torch

from .cases import build_case, compile_in_place
from .flops import count_flops
from .frozen import add_frozen_ratios
from .memory import peak_memory_mib
from .official_adapter import share_weights
from .profiling import profile_table
from .settings import Setting
from .timing import measure


def measured_choices(model: torch.nn.Module) -> Dict[str, str]:
    """What measured choices (``FastUPerHead(fast_path='auto')``'s ``path_choice``) settled on in
    the timed calls: ``{'decode_head.fpn_bottleneck': 'low_res', ...}``, one entry per fusion
    convolution and per distinct choice (several keys: train and eval calls, sizes)."""
    found: Dict[str, set] = {}
    for name, module in model.named_modules():
        cache = getattr(getattr(module, 'path_choice', None), 'choices', None)
        for key, choice in (cache.items() if isinstance(cache, dict) else ()):
            found.setdefault(f"{name}.{key[0]}" if name else str(key[0]), set()).add(choice)
    return {conv: '/'.join(sorted(chosen)) for conv, chosen in found.items()}


def run_size(args: argparse.Namespace, settings: Dict[str, Setting], size: Tuple[int, int]) -> List[dict]:
    """Time (count, measure) every setting at ``size``; one result row per setting."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    cases = {label: build_case(args, s, size, compile_model=False) for label, s in settings.items()}
    parity = share_weights(cases, settings, size)  # official-adapter's weights into ours, if both
    flops = {}
    if args.flops:  # compiled settings: counted eagerly before compiling (the counter cannot
        # see inside compiled code); the others after timing, so that a choice made at the
        # first call (FastUPerHead(fast_path='auto')) is the computation counted
        flops = {label: count_flops(case.step) for label, case in cases.items()
                 if settings[label].compiled}
    for label, case in cases.items():
        if settings[label].compiled:
            compile_in_place(case.model, settings[label].variant)
    medians, first = measure({label: c.step for label, c in cases.items()}, args.repeats, args.warmup,
                             device)
    if args.flops:
        flops.update({label: count_flops(case.step) for label, case in cases.items()
                      if not settings[label].compiled})
    choices = {label: measured_choices(c.model) for label, c in cases.items()}
    profiles = {label: profile_table(c.step, args.profile, device)
                for label, c in cases.items()} if args.profile else {}
    params = {label: (c.params, c.trainable) for label, c in cases.items()}
    del cases
    memory = {label: peak_memory_mib(args, s, size) for label, s in settings.items()} if args.memory else {}
    labels = list(settings)
    rows = []
    for label in labels:
        s = settings[label]
        row = dict(variant=s.variant, label=label, height=size[0], width=size[1], batch=args.batch,
                   mode=args.mode, dtype=s.dtype, compiled=s.compiled, channels_last=args.channels_last,
                   grad_checkpointing=args.grad_checkpointing, device=args.device,
                   threads=torch.get_num_threads(), seconds=medians[label],
                   ratio=medians[label] / medians[labels[0]], images_per_s=args.batch / medians[label],
                   first_seconds=first.get(label), params=params[label][0], trainable=params[label][1])
        if label in flops:
            row.update(gflop=flops[label] / 1e9, gflop_per_s=flops[label] / 1e9 / medians[label],
                       flop_ratio=flops[label] / flops[labels[0]])
        if label in memory:
            (peak, call), (peak0, call0) = memory[label], memory[labels[0]]
            row.update(peak_mib=peak, call_mib=call, peak_ratio=peak / peak0, call_ratio=call / call0)
        if choices[label]:
            row['measured_choices'] = choices[label]
        if label in profiles:
            row['profile'] = profiles[label]
        if parity:
            row['parity'] = parity
        rows.append(row)
    add_frozen_ratios(rows)
    return rows
