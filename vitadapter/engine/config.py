"""Config preparation shared by tools/train.py, tools/test.py and the demo.

``prepare_config(cfg)`` adapts a config to the machine and the command line, and nothing else
(the model resolves ``in_channels='auto'`` itself, see :mod:`vitadapter.engine.models.segmentor`,
so a config also runs under mmseg's stock tools): it points every dataloader at ``data_root``,
switches DDP and FSDP to gloo without a GPU (with CPU-synchronised BN), turns on mixed precision,
makes sure the runner has the ``SafeCheckpointsHook`` (mmengine's checkpoint objects under
``torch.load(weights_only=True)``), and stops early with a clear message when a head's
``in_channels='auto'`` would reach a segmentor that cannot fill it.
"""
import os
from typing import Optional

import torch
from mmengine.config import Config, ConfigDict

from .models.segmentor import check_auto_resolved
from .training.checkpoint_safety import SAFE_CHECKPOINTS_HOOK


def _datasets(cfg: Config):
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        stack = [loader['dataset']]
        while stack:
            ds = stack.pop()
            yield ds
            stack += list(ds.get('datasets', [])) + ([ds['dataset']] if 'dataset' in ds else [])


def use_cpu_sync_bn(node) -> None:
    """Replace every ``norm_cfg`` of type BN/SyncBN in a model config by ``CPUSyncBN`` (in place)."""
    if isinstance(node, dict):
        norm = node.get('norm_cfg')
        if isinstance(norm, dict) and norm.get('type') in ('BN', 'BN2d', 'SyncBN'):
            norm['type'] = 'CPUSyncBN'
        for value in node.values():
            use_cpu_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            use_cpu_sync_bn(value)


def init_cpu_process_group(launcher: str) -> None:
    """Start the gloo process group for CPU-only training under torchrun or SLURM. mmengine 0.10's
    own start-up calls ``torch.cuda.set_device`` and fails without a GPU; the runners skip their
    initialisation when a process group already exists."""
    import torch.distributed as dist
    if launcher not in ('pytorch', 'slurm') or not dist.is_available() or dist.is_initialized():
        return
    if launcher == 'slurm':
        export_slurm_environment()
    dist.init_process_group(backend='gloo')


def export_slurm_environment() -> None:
    """RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR/PORT from SLURM's variables, as mmengine's
    SLURM start-up sets them (the master is the first host of SLURM_NODELIST)."""
    import subprocess
    env = os.environ
    env['RANK'] = env['SLURM_PROCID']
    env['WORLD_SIZE'] = env['SLURM_NTASKS']
    env['LOCAL_RANK'] = env.get('SLURM_LOCALID', '0')
    if 'MASTER_ADDR' not in env:
        hosts = subprocess.run(['scontrol', 'show', 'hostnames', env['SLURM_NODELIST']],
                               capture_output=True, text=True, check=True).stdout.split()
        env['MASTER_ADDR'] = hosts[0]
    env.setdefault('MASTER_PORT', '29500')


def load_config(path: str, cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None) -> Config:
    """Read a config the way mmseg's tools do: apply ``--cfg-options``, then choose the work dir
    (the argument, the config's own ``work_dir``, or ``./work_dirs/<config name>``)."""
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.work_dir = work_dir or cfg.get('work_dir') or os.path.join(
        './work_dirs', os.path.splitext(os.path.basename(path))[0])
    return cfg


def finish_distributed() -> None:
    """Wait for every process, then close the process group (a gloo group left open can abort
    a process at exit with "terminate called without an active exception")."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def prepare_config(cfg: Config, launcher: str = 'none', amp: bool = False,
                   data_root: Optional[str] = None) -> Config:
    """Prepare an mmseg config for mmengine's Runner (in place; also returned)."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == SAFE_CHECKPOINTS_HOOK for h in hooks):
        cfg.custom_hooks = hooks + [dict(type=SAFE_CHECKPOINTS_HOOK)]
    cfg.launcher = launcher
    if launcher != 'none' and not torch.cuda.is_available():
        cfg.setdefault('env_cfg', ConfigDict()).setdefault('dist_cfg', ConfigDict())['backend'] = 'gloo'
        # mmengine's default DDP wrapper passes device_ids=[LOCAL_RANK], which CPU modules refuse
        wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(type='MMDistributedDataParallel')
        wrapper.update(device_ids=None, broadcast_buffers=wrapper.get('broadcast_buffers', False))
        cfg.model_wrapper_cfg = wrapper
        # torch's SyncBatchNorm refuses CPU modules: synchronise BN with our CPU-capable one
        if 'model' in cfg:
            use_cpu_sync_bn(cfg.model)
        cfg.sync_bn = None
        init_cpu_process_group(launcher)
    if data_root is not None:
        for ds in _datasets(cfg):
            if 'data_root' in ds:
                ds['data_root'] = data_root
    fsdp_precision = ((cfg.get('strategy') or {}).get('model_wrapper') or {}).get('mixed_precision')
    if amp and fsdp_precision:
        raise ValueError(f"--amp and the FSDP strategy's mixed_precision={dict(fsdp_precision)} both "
                         "ask for mixed precision: the FSDP config computes in "
                         f"{fsdp_precision.get('param_dtype')} already; drop --amp (or set "
                         "strategy.model_wrapper.mixed_precision=None to use --amp's autocast)")
    if amp:
        wrapper = cfg.optim_wrapper
        if wrapper.get('type', 'OptimWrapper') == 'OptimWrapper':
            if torch.cuda.is_available():  # fp16 with dynamic loss scaling
                wrapper.update(type='AmpOptimWrapper', loss_scale='dynamic')
            else:  # bf16 autocast, no loss scaling needed (mmengine's AMP wrapper needs a GPU)
                wrapper.update(type='CPUAmpOptimWrapper', dtype='bfloat16')
    if 'model' in cfg:
        check_auto_resolved(cfg.model)
    return cfg
