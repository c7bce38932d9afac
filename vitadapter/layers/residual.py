"""Residual branches that end in a linear layer, with the residual added by the GEMM itself.

``residual + scale * linear(x)`` as ``addmm(residual, x, (scale * W)^T) + scale * b``: the residual
is the GEMM's accumulator (beta = 1), so no separate sum is written to fresh memory and read back;
on the adapter's 5,376-token prior sequence (and for the injector's gamma) that is a full pass over
a (B, N, C) tensor saved per branch. The same function: only the order of the rounding differs
(the scale is applied to the weights instead of the output).

Under autocast the plain form is kept (autocast would round the residual itself to the lower
precision as an input of ``addmm``), and likewise when the dtypes differ.
"""
from typing import Optional

import torch
import torch.nn as nn


def linear_residual(residual: torch.Tensor, x: torch.Tensor, linear: nn.Linear,
                    scale: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``residual + scale * linear(x)``: residual (..., C_out), x (..., C_in) with the same leading
    shape, scale (C_out,) or None -> (..., C_out)."""
    if (torch.is_autocast_enabled(x.device.type) or residual.dtype != x.dtype
            or linear.weight.dtype != x.dtype or residual.shape[:-1] != x.shape[:-1]):
        out = linear(x)
        return residual + (out if scale is None else scale * out)
    weight, bias = linear.weight, linear.bias
    if scale is not None:
        weight = weight * scale[:, None]
        bias = None if bias is None else bias * scale
    out = torch.addmm(residual.reshape(-1, residual.shape[-1]), x.reshape(-1, x.shape[-1]), weight.t())
    if bias is not None:
        out.add_(bias)  # in place on the GEMM's fresh output (addmm's backward does not read it)
    return out.view(residual.shape)
