"""EoMT's schedules in mmengine's runner: mask annealing (a hook) and the two-stage warm-up (a
parameter scheduler), both functions of the runner's iteration (:mod:`vitadapter.models.schedules`),
so a resumed run takes the values of the uninterrupted one.

Config::

    custom_hooks = [dict(type='MaskAnnealingHook', starts=[6520, 13040, 19560, 26080],
                         ends=[13040, 19560, 26080, 32600], power=0.9)]
    optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
                         constructor='ViTLayerDecayOptimizerConstructor',
                         paramwise_cfg=dict(layer_decay_rate=0.8, full_rate_blocks=4))
    param_scheduler = [dict(type='TwoStageWarmupPolyLR', warmup=(500, 1000), power=0.9, end=40000)]
"""
from typing import List, Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS, PARAM_SCHEDULERS

from ...models import MaskAnnealing, two_stage_warmup_poly


@HOOKS.register_module()
class MaskAnnealingHook(Hook):
    """Before every training step, the EoMT/PMT segmentor's mask probabilities at that iteration
    (:class:`vitadapter.models.MaskAnnealing`); the windows are checked against the schedule.

    Args:
        starts / ends: one iteration per masked block (EoMT: the last N blocks; PMT: the decoder
            layers). power: the poly exponent (0.9).
    """

    priority = 'NORMAL'

    def __init__(self, starts: Sequence[int], ends: Sequence[int], power: float = 0.9):
        self.starts, self.ends, self.power = list(starts), list(ends), power
        self.annealing = MaskAnnealing(starts, ends, power)

    @staticmethod
    def _segmentor(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'set_iteration'):
            raise TypeError(f"MaskAnnealingHook anneals the masks of an EoMTSegmentor; the model is "
                            f"{type(model).__name__}: remove the hook or use model=dict(type='EoMTSegmentor', ...)")
        return model

    def before_train(self, runner) -> None:
        self.annealing = MaskAnnealing(self.starts, self.ends, self.power, max_iters=runner.max_iters)
        network = self._segmentor(runner).network
        if len(self.annealing) != network.num_blocks:
            raise ValueError(f"MaskAnnealingHook has {len(self.annealing)} windows but the network masks "
                             f"{network.num_blocks} blocks: give one start and one end per masked block")

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._segmentor(runner).set_iteration(runner.iter, self.annealing.probabilities(runner.iter))


@PARAM_SCHEDULERS.register_module()
class TwoStageWarmupPolyLR:
    """EoMT's learning rate per iteration: the head warms up over ``warmup[0]`` iterations while the
    trunk waits at 0, the trunk then warms up over ``warmup[1]``, both decay as poly to ``end``
    (:func:`vitadapter.models.two_stage_warmup_poly`). It tells the trunk's parameter groups by
    their ``trunk`` flag, which ``ViTLayerDecayOptimizerConstructor`` sets.

    Args:
        optimizer: the optimizer or mmengine's optim wrapper (the runner passes it).
        warmup: (head, trunk) warm-up iterations. power: the poly exponent. end: the last iteration.
    """

    def __init__(self, optimizer, warmup: Tuple[int, int] = (500, 1000), power: float = 0.9,
                 end: Optional[int] = None, by_epoch: bool = False, **_):
        if by_epoch:
            raise ValueError("TwoStageWarmupPolyLR steps per iteration: by_epoch=False")
        if end is None:
            raise ValueError("TwoStageWarmupPolyLR needs end= (the schedule's last iteration)")
        self.optimizer = getattr(optimizer, 'optimizer', optimizer)
        groups = self.optimizer.param_groups
        if any('trunk' not in g for g in groups):
            raise ValueError("TwoStageWarmupPolyLR tells the trunk's parameters from the others by the "
                             "groups' 'trunk' flag: use constructor='ViTLayerDecayOptimizerConstructor'")
        self.warmup, self.power, self.end, self.by_epoch = tuple(warmup), power, int(end), False
        self.base_lrs: List[float] = [g.setdefault('initial_lr', g['lr']) for g in groups]
        self.last_step = 0
        self._apply()

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group['lr'] = base * two_stage_warmup_poly(self.last_step, self.end, self.warmup,
                                                       self.power, trunk=group['trunk'])

    def step(self) -> None:
        """After a training step: the learning rates of the next one."""
        self.last_step += 1
        self._apply()

    def get_last_value(self) -> List[float]:
        return [g['lr'] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return dict(last_step=self.last_step, base_lrs=list(self.base_lrs))

    def load_state_dict(self, state: dict) -> None:
        self.last_step, self.base_lrs = int(state['last_step']), list(state['base_lrs'])
        self._apply()
