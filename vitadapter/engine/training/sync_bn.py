"""Synchronised batch norm that also works for CPU DDP (gloo).

torch's ``SyncBatchNorm`` refuses CPU modules inside DDP and mmcv's needs CUDA kernels, so CPU
multi-process training would silently fall back to per-process statistics. ``CPUSyncBatchNorm``
(registered as ``norm_cfg=dict(type='CPUSyncBN')``) all-reduces the per-channel sum, sum of
squares and count in training mode, through the autograd-aware ``torch.distributed.nn``
all-reduce, so both the statistics and their gradients are those of the global batch. Outside
DDP, or in eval mode, it is a plain ``BatchNorm2d``. ``prepare_config`` swaps the heads' ``BN`` for
it when DDP runs without a GPU; with GPUs, mmengine converts BN to torch's ``SyncBatchNorm``.
"""
import torch
import torch.distributed as dist
import torch.nn as nn
from mmengine.registry import MODELS

from ...layers import register_norm


@MODELS.register_module('CPUSyncBN')  # for mmcv's build_norm_layer (mmseg heads)
class CPUSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover every process's batch. Input (B, C, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce
        channels = x.shape[1]
        count = torch.full((1,), x.numel() / channels, dtype=x.dtype, device=x.device)
        stats = torch.cat([x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3)), count])
        stats = all_reduce(stats)  # sum over processes, differentiable
        total = stats[-1]
        mean = stats[:channels] / total
        var = stats[channels:2 * channels] / total - mean * mean
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * total / (total - 1).clamp(min=1)
                self.running_mean.mul_(1 - momentum).add_(momentum * mean)
                self.running_var.mul_(1 - momentum).add_(momentum * unbiased)
        y = (x - mean[None, :, None, None]) * torch.rsqrt(var[None, :, None, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y


register_norm('CPUSyncBN', CPUSyncBatchNorm)  # for the core's build_norm2d (ViTAdapter, necks)
