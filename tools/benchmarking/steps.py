"""One measured call of a built model: a forward pass without autograd, or a training step
(forward, backward, AdamW), for a backbone-level variant or an mmseg segmentor."""
import contextlib
from typing import Callable, List

import torch
import torch.nn as nn

from vitadapter import TrunkOutput

from .settings import DTYPES


def outputs(result) -> List[torch.Tensor]:
    """Every tensor a backbone variant returns (levels, the trunk's maps, or [map, cls] pairs)."""
    if isinstance(result, TrunkOutput):
        return list(result.maps)
    flat = []
    for item in result:
        flat += [t for t in item] if isinstance(item, (list, tuple)) else [item]
    return flat


def autocast(device: torch.device, dtype: str):
    """Autocast to ``dtype`` (nothing for fp32)."""
    if dtype == 'fp32':
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[dtype])


def backbone_step(model: nn.Module, x: torch.Tensor, mode: str, dtype: str) -> Callable[[], None]:
    """One call of ``mode`` on a backbone-level variant; ``x`` is the (B, 3, H, W) input."""
    if mode == 'forward':
        model.eval()

        def forward():
            with torch.no_grad(), autocast(x.device, dtype):
                model(x)
        return forward
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    scaler = torch.amp.GradScaler(x.device.type, enabled=dtype == 'fp16' and x.device.type == 'cuda')

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(x.device, dtype):
            loss = sum(y.float().pow(2).mean() for y in outputs(model(x)))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return train_step


def optim_wrapper_for(model: nn.Module, device: torch.device, dtype: str):
    """mmengine optimizer wrapper: AdamW, autocast to ``dtype`` (loss scaling for fp16 on a GPU)."""
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    from vitadapter.engine import CPUAmpOptimWrapper
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    if dtype == 'fp32':
        return OptimWrapper(optimizer)
    name = {'bf16': 'bfloat16', 'fp16': 'float16'}[dtype]
    if device.type == 'cuda':
        return AmpOptimWrapper(optimizer=optimizer, dtype=name,
                               loss_scale='dynamic' if dtype == 'fp16' else 1.0)
    return CPUAmpOptimWrapper(optimizer=optimizer, dtype=name)


def segmentor_step(model: nn.Module, data: dict, mode: str, dtype: str, forward_kind: str,
                   device: torch.device) -> Callable[[], None]:
    """One call of ``mode`` on an mmseg segmentor: ``train_step``, or a forward pass."""
    if mode == 'train':
        model.train()
        wrapper = optim_wrapper_for(model, device, dtype)

        def train_step():
            try:
                model.train_step(data, wrapper)
            except ValueError as err:
                if 'Expected more than 1 value per channel' in str(err):
                    raise ValueError("a BN layer of the heads (UPerHead's 1x1 pooling) needs more than "
                                     "one image in training: use --batch 2 or more") from err
                raise
        return train_step
    model.eval()

    def forward():
        with torch.no_grad(), autocast(device, dtype):
            if forward_kind == 'predict':
                model.test_step(data)
            else:
                batch = model.data_preprocessor(data, False)
                model(batch['inputs'], batch['data_samples'], mode='tensor')
    return forward
