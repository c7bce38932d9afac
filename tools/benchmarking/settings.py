"""The timed columns: every variant under every ``--dtype``, eager and/or compiled, by label."""
import argparse
from typing import Dict, NamedTuple

import torch

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


class Setting(NamedTuple):
    """One timed column: a variant under a dtype, compiled or not."""
    variant: str
    dtype: str
    compiled: bool

    def label(self, show_dtype: bool, show_compiled: bool) -> str:
        tags = ([self.dtype] if show_dtype else []) + (['compiled'] if show_compiled and self.compiled else [])
        return self.variant + (f"[{','.join(tags)}]" if tags else '')


def settings_of(args: argparse.Namespace) -> Dict[str, Setting]:
    """Every (variant, dtype, compiled) combination to time, by label, in alternation order."""
    compiled = {'off': [False], 'on': [True], 'both': [False, True]}[args.compile]
    show_dtype, show_compiled = len(args.dtype) > 1, args.compile == 'both'
    result = {}
    for variant in args.variants:
        for dtype in args.dtype:
            for comp in compiled:
                setting = Setting(variant, dtype, comp)
                result[setting.label(show_dtype, show_compiled)] = setting
    return result
