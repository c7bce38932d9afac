"""EoMT's upscaling of the patch map (Kerssies et al., CVPR 2025): the "scale blocks" that bring a
ViT's patch map to stride 4 for the mask logits, shared by EoMT and PMT."""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import LayerNorm2d

from ..compat import depthwise_gelu_backward, normalize_last_dim, normalize_last_dim_backward


class ScaleBlock(nn.Module):
    """ConvTranspose2d(C, C, 2, stride 2) -> GELU -> depthwise 3x3 (no bias) -> LayerNorm2d.

    Parameter names: ``conv1``, ``conv2``, ``norm`` (tue-mps/eomt's). forward: (B, C, h, w) ->
    (B, C, 2h, 2w).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.conv1 = nn.ConvTranspose2d(dim, dim, kernel_size=2, stride=2)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim, bias=False)
        self.norm = LayerNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._lean(x):
            return self.norm(self.conv2(self.act(self.conv1(x))))
        normed, weight, bias = self.normalized(x)
        return normed if weight is None else normed * weight[:, None, None] + bias[:, None, None]

    def _lean(self, x: torch.Tensor) -> bool:
        lean = torch.is_grad_enabled() and (x.requires_grad or self.conv1.weight.requires_grad)
        return lean and self.norm.weight is not None and self.conv2.bias is None

    def normalized(self, x: torch.Tensor, scale: Optional[torch.Tensor] = None,
                   shift: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The block of ``x * scale + shift`` (per channel; none: of ``x``) short of its norm's
        affine: (x_hat (B, C, 2h, 2w), the norm's weight (C,), bias (C,)); the block's output is
        x_hat * weight + bias (weight and bias None: x_hat is the output). Chained, each affine
        folds into what comes next (the following block's upsampling, EoMT's mask product), so
        that while training two maps of the block's output size are saved for the backward
        instead of four: the GELU's input and x_hat (:class:`_GeluDepthwiseNormalize`). Without
        gradients, the modules as they are."""
        if not self._lean(x):
            if scale is not None:
                x = x * scale[:, None, None] + shift[:, None, None]
            return self.norm(self.conv2(self.act(self.conv1(x)))), None, None
        y = self.upsample(x, scale, shift)
        return _GeluDepthwiseNormalize.apply(y, self.conv2.weight, self.norm.eps), self.norm.weight, self.norm.bias

    def upsample(self, x: torch.Tensor, scale: Optional[torch.Tensor] = None,
                 shift: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``conv1`` of ``x * scale + shift`` (B, C, h, w) -> (B, C, 2h, 2w), as what it is: a
        matmul per pixel (the 2x2 kernel never overlaps), with the affine folded into its weight
        and bias, laid out channels-last. On a CPU its backward runs about 2x faster than the
        transposed convolution's on the channels-last maps that come from the tokens."""
        conv = self.conv1
        b, c, h, w = x.shape
        out = conv.out_channels
        # (C_out * 4, C_in), rows ordered (di, dj, C_out): one output pixel of each offset per row block
        weight = conv.weight.permute(2, 3, 1, 0).reshape(4 * out, c)
        bias = conv.bias.repeat(4) if conv.bias is not None else weight.new_zeros(4 * out)
        if scale is not None:
            weight, bias = weight * scale, bias + weight @ shift
        y = F.linear(x.permute(0, 2, 3, 1), weight, bias)  # (B, h, w, 4 * C_out)
        y = y.reshape(b, h, w, 2, 2, out).permute(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, out)
        return y.permute(0, 3, 1, 2)


class _GeluDepthwiseNormalize(torch.autograd.Function):
    """x_hat = LayerNorm2d without affine (depthwise 3x3 (GELU(y))), saving y, x_hat and the
    inverse deviations only: the backward recomputes GELU (cheap, elementwise) and takes the
    norm's gradient from x_hat. y: (B, C, H, W)."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        d = F.conv2d(F.gelu(y), weight, padding=weight.shape[-1] // 2, groups=weight.shape[0])
        d = d.permute(0, 2, 3, 1)  # (B, H, W, C): channels innermost
        x_hat, rstd = normalize_last_dim(d, eps)
        ctx.save_for_backward(y, weight, x_hat, rstd)
        return x_hat.permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        y, weight, x_hat, rstd = ctx.saved_tensors
        # under autocast the forward ran in y's dtype (the weight cast to it): so does the backward.
        # The depthwise convolution's output gradient is passed on without a reference kept here
        # (depthwise_gelu_backward frees it once used).
        grad_y, grad_w = depthwise_gelu_backward(
            normalize_last_dim_backward(grad.permute(0, 2, 3, 1), x_hat, rstd).permute(0, 3, 1, 2).to(y.dtype),
            y, weight.to(y.dtype))
        return grad_y, grad_w.to(weight.dtype), None


def num_scale_blocks(patch_size: Sequence[int]) -> int:
    """How many 2x blocks bring a patch map towards stride 4: ``max(1, floor(log2(patch)) - 2)``
    (patch 16: 2, stride 4; patch 14: 1, stride 7; patch 8: 1, stride 4), as EoMT counts them."""
    return max(1, int(math.log2(max(patch_size))) - 2)


def scale_blocks(dim: int, patch_size: Sequence[int]) -> nn.Sequential:
    """EoMT's upscaler for a patch map of ``patch_size`` pixels: :func:`num_scale_blocks` blocks."""
    return nn.Sequential(*[ScaleBlock(dim) for _ in range(num_scale_blocks(patch_size))])
