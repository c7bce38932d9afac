"""Fully sharded training (FSDP) of vitadapter segmentors through mmengine's ``FSDPStrategy``.

One switch in a config (``configs/_base_/fsdp.py``)::

    runner_type = 'FlexibleRunner'
    strategy = dict(type='TrunkFSDPStrategy', state_dict_cfg='full',
                    model_wrapper=dict(type='TrunkBlockFSDP', checkpoint_blocks=True,
                                       mixed_precision=dict(param_dtype='bfloat16', ...)))

mmengine's ``FlexibleRunner`` + ``FSDPStrategy`` do the work (sharding, the sharded optimizer,
checkpoints). ``TrunkFSDPStrategy`` is that strategy with one mmengine 0.10 bug fixed (resuming
passed torch 2.0's argument order to ``FSDP.optim_state_dict_to_load``: a TypeError on any newer
torch). ``TrunkBlockFSDP`` is its ``MMFullyShardedDataParallel`` with the choices a ViT segmentor
needs:

* the wrap unit is a trunk block: every block of every vitadapter trunk in the model becomes an
  FSDP unit (found by identity, so any timm block class works), the rest (patch embedding, neck,
  adapter, heads) is the root unit. The heads cannot be units of their own: FSDP gathers a unit's
  parameters when its ``forward`` is called, and mmseg calls heads through ``loss()`` /
  ``predict()`` (and ``FastUPerHead`` reads its convolutions' weights directly);
* ``checkpoint_blocks=True`` recomputes each block's activations in the backward pass (torch's
  non-reentrant activation checkpointing, applied inside the units);
* it runs without a GPU: FSDP needs ``device_id=torch.device('cpu')`` there (gloo), and one
  process without a launcher gets a process group of one, so an FSDP config also runs under
  ``python tools/train.py`` / ``tools/test.py`` (and mmseg's stock tools) on one process;
* with GPUs, the heads' BatchNorm becomes torch's ``SyncBatchNorm`` (DDP's ``sync_bn='torch'``;
  the FSDP strategy converts nothing itself);
* it keeps the unsharded shape of every parameter (``unsharded_shapes``, on the wrapper and on the
  wrapped model): once sharded, FSDP's
  parameters are 1-D views of their shards, and rules like "no weight decay on 1-D parameters"
  (:class:`~vitadapter.engine.training.optimizer.ViTLayerDecayOptimizerConstructor`) must not read them.

Checkpoints with ``state_dict_cfg='full'`` are gathered on rank 0 (offloaded to the CPU): their
``state_dict`` has the unsharded model's keys and shapes, so ``tools/test.py`` evaluates them on
one process and any config without FSDP loads them.
"""
import copy
import logging
from functools import partial
from typing import Dict, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model.wrappers import MMFullyShardedDataParallel
from mmengine.registry import MODEL_WRAPPERS, STRATEGIES
from torch.distributed.fsdp import FullyShardedDataParallel
from torch.distributed.fsdp.wrap import lambda_auto_wrap_policy

from ...compat import activation_checkpointing, is_fsdp_flattened
from ...trunk import TimmViTTrunk

FSDPStrategy = STRATEGIES.get('FSDPStrategy')  # mmengine's (defined in its private _strategy)

# Inserted into parameter names by FSDP units and activation-checkpoint wrappers.
WRAPPER_PREFIXES = ('_fsdp_wrapped_module.', '_checkpoint_wrapped_module.')


def unwrapped_name(name: str) -> str:
    """A parameter's name in the model before FSDP and checkpoint wrappers were applied."""
    for prefix in WRAPPER_PREFIXES:
        name = name.replace(prefix, '')
    return name


def trunk_blocks(module: nn.Module):
    """The transformer blocks of every vitadapter trunk inside ``module``."""
    return [block for m in module.modules() if isinstance(m, TimmViTTrunk) for block in m.blocks]


def start_single_process_group() -> None:
    """FSDP needs a process group; a run without a launcher gets one of a single process."""
    if dist.is_initialized():
        return
    backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    print_log(f'FSDP without a launcher: a {backend} process group of one process (nothing to '
              'shard; launch several processes with torchrun to shard)', logger='current',
              level=logging.WARNING)


@MODEL_WRAPPERS.register_module()
class TrunkBlockFSDP(MMFullyShardedDataParallel):
    """mmengine's FSDP wrapper with the trunk's blocks as units (see the module docstring).

    Args:
        module: the segmentor (any model holding at least one vitadapter trunk).
        checkpoint_blocks: recompute each block's activations in the backward pass.
        sync_bn: with GPUs and more than one process, BatchNorm layers become SyncBatchNorm.
        device_id: mmengine's FSDPStrategy passes ``LOCAL_RANK`` (a GPU index); without a GPU the
            CPU is used instead.
        auto_wrap_policy: None = one unit per trunk block; anything mmengine's wrapper accepts.
        **kwargs: :class:`~mmengine.model.wrappers.MMFullyShardedDataParallel`'s (and torch's
            ``FullyShardedDataParallel``'s) arguments: ``mixed_precision``, ``sharding_strategy``,
            ``cpu_offload``, ...
    """

    def __init__(self, module: nn.Module, *, checkpoint_blocks: bool = True, sync_bn: bool = True,
                 device_id=None, auto_wrap_policy=None, **kwargs):
        blocks = trunk_blocks(module)
        if not blocks:
            raise ValueError('TrunkBlockFSDP found no vitadapter trunk in the model: use mmengine\'s '
                             "MMFullyShardedDataParallel with an auto_wrap_policy for other models")
        start_single_process_group()
        if torch.cuda.is_available():
            if sync_bn and dist.get_world_size() > 1:
                module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        else:
            device_id = torch.device('cpu')
        block_ids = {id(b) for b in blocks}
        is_block = lambda m: id(m) in block_ids  # noqa: E731
        if auto_wrap_policy is None:
            auto_wrap_policy = partial(lambda_auto_wrap_policy, lambda_fn=is_block)
        shapes: Dict[str, Tuple[int, ...]] = {n: tuple(p.shape) for n, p in module.named_parameters()}
        # kept on the wrapped model too: optimizer constructors receive ``wrapper.module``
        module.unsharded_shapes = shapes
        super().__init__(module, device_id=device_id, auto_wrap_policy=auto_wrap_policy, **kwargs)
        if checkpoint_blocks:
            CheckpointImpl, apply_activation_checkpointing, checkpoint_wrapper = activation_checkpointing()
            apply_activation_checkpointing(
                self, check_fn=is_block,
                checkpoint_wrapper_fn=partial(checkpoint_wrapper,
                                              checkpoint_impl=CheckpointImpl.NO_REENTRANT))

    @staticmethod
    def set_state_dict_type(module, state_dict_type, state_dict_config=None,
                            optim_state_dict_config=None):
        """torch's, except that without a GPU nothing is 'offloaded to the CPU': the parameters are
        there already, and torch 2.13's full state dict then reads the freed gathered storage
        (a segmentation fault while cloning it)."""
        if not torch.cuda.is_available():
            state_dict_config = _without_cpu_offload(state_dict_config)
            optim_state_dict_config = _without_cpu_offload(optim_state_dict_config)
        return MMFullyShardedDataParallel.set_state_dict_type(
            module, state_dict_type, state_dict_config, optim_state_dict_config)


def _without_cpu_offload(config):
    if config is not None and getattr(config, 'offload_to_cpu', False):
        config = copy.copy(config)
        config.offload_to_cpu = False
    return config


def unsharded_ndim(model: nn.Module) -> Optional[Dict[str, int]]:
    """{unwrapped parameter name: ndim before sharding} when ``model`` is FSDP-wrapped, else None.

    Raises for an FSDP model that did not record its shapes (its parameters are flat shards)."""
    shapes = getattr(model, 'unsharded_shapes', None)
    if isinstance(shapes, dict):
        return {unwrapped_name(n): len(s) for n, s in shapes.items()}
    if any(is_fsdp_flattened(p) for p in model.parameters()):
        raise ValueError("the model is wrapped by FSDP, whose parameters are flat shards: their "
                         "shapes no longer tell weights from biases and norms. Use "
                         "model_wrapper=dict(type='TrunkBlockFSDP') (strategy=dict(type='TrunkFSDPStrategy')), which "
                         "records the unsharded shapes")
    return None


@STRATEGIES.register_module()
class TrunkFSDPStrategy(FSDPStrategy):
    """mmengine's ``FSDPStrategy`` with ``TrunkBlockFSDP`` as its default wrapper, and the optimizer
    state loaded on resume with torch's current ``optim_state_dict_to_load(model, optim, state)``
    (mmengine 0.10.7-0.10.12 pass ``(state, model, optim)``, the order of torch 2.0)."""

    def __init__(self, *, model_wrapper: Optional[dict] = None, **kwargs):
        super().__init__(model_wrapper=model_wrapper or dict(type='TrunkBlockFSDP'), **kwargs)

    def load_optim_state_dict(self, state_dict: dict) -> None:
        optim_state_dict = FullyShardedDataParallel.optim_state_dict_to_load(
            self.model, self.optim_wrapper.optimizer, state_dict)
        self.optim_wrapper.load_state_dict(optim_state_dict)
