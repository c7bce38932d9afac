"""Imported by a training config's ``custom_imports`` (not a test module): ``ParamGroupProbe``
writes, before training, what every rank's optimizer holds, to ``param_groups_rank{R}.json`` in
the work dir: per parameter (named as in the unwrapped model) its group's lr and weight decay,
the number of elements this rank holds, and whether the group's parameter object is the model's
parameter of that name (so the groups address the parameters FSDP trains, not stale copies)."""
import json
import os

import torch.distributed as dist
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from vitadapter.engine.training.fsdp import unwrapped_name


@HOOKS.register_module()
class ParamGroupProbe(Hook):
    priority = 'LOWEST'

    def before_train(self, runner):
        model = runner.model
        names = {id(p): unwrapped_name(n).removeprefix('module.')  # DDP's wrapper adds 'module.'
                 for n, p in model.named_parameters()}
        report = {}
        for group in runner.optim_wrapper.optimizer.param_groups:
            for param, name in zip(group['params'], group['param_names']):
                report[unwrapped_name(name)] = dict(
                    lr=group['lr'], weight_decay=group['weight_decay'], numel=param.numel(),
                    is_model_param=names.get(id(param)) is not None,
                    model_name=names.get(id(param)))
        rank = dist.get_rank() if dist.is_initialized() else 0
        with open(os.path.join(runner.work_dir, f'param_groups_rank{rank}.json'), 'w') as f:
            json.dump(report, f)
