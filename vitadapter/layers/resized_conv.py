"""A 3x3 convolution of a bilinearly resized map, with the channel mixing done before the resize.

UperNet-style heads resize every coarse level to the finest one, concatenate, and run a 3x3
convolution: most of that convolution's work multiplies channels of pixels that were only
interpolated. Channel mixing (a matrix per pixel) commutes with any per-channel spatial linear
map (bilinear resize, shift, zero padding), so

    conv3x3(resize(x, (H, W)), w)  ==  sum over taps (dy, dx) of  shift_(dy,dx)(resize(w[:, :, dy, dx] @ x))

exactly, up to float rounding. ``conv3x3_of_resized`` computes the right side: one 1x1
convolution to ``9 * C_out`` channels at x's resolution (1/k^2 of the multiply-adds of the
left side for a k-times upsample), then the resize and the tap shifts as two small matrix
products, one per axis (bilinear is separable; a shifted 1-D linear resize is a matrix with
zero rows where the shift leaves the image, which is the convolution's zero padding).
"""
import functools
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .geometry import is_static

__all__ = ['conv3x3_of_concat', 'conv3x3_of_resized', 'conv3x3_of_resized_concat',
           'resized_conv_saves_work', 'tap_resize_matrix']


def _build_tap_resize_matrix(n_in: int, n_out: int, align_corners: bool, dtype: torch.dtype,
                             device: torch.device) -> torch.Tensor:
    with torch.inference_mode(False), torch.no_grad():
        eye = torch.eye(n_in, dtype=torch.float64).unsqueeze(0)  # n_in one-hot signals of length n_in
        resize = F.interpolate(eye, size=n_out, mode='linear', align_corners=align_corners)[0].t()
        padded = F.pad(resize, (0, 0, 1, 1))  # a zero row above and below
        # output row i of tap d reads resized row i + d (zero outside the image)
        taps = torch.cat([padded[d + 1:d + 1 + n_out] for d in (-1, 0, 1)], dim=1)
        return taps.to(dtype=dtype, device=device)


_cached_tap_resize_matrix = functools.lru_cache(maxsize=256)(_build_tap_resize_matrix)


def tap_resize_matrix(n_in: int, n_out: int, align_corners: bool, dtype: torch.dtype,
                      device: torch.device) -> torch.Tensor:
    """(n_out, 3 * n_in): ``[S_-1 R, S_0 R, S_+1 R]`` where R is the 1-D linear resize from
    n_in to n_out samples (torch's coefficients, ``F.interpolate(mode='linear')``) and S_d reads
    row ``i + d`` of its input for output row i, zero where that row is outside.

    Cached per size, dtype and device (a few KiB each), built as a normal tensor even inside
    ``torch.inference_mode`` so that a later training step can save it for backward; under
    ``torch.compile`` built in the graph (constants for the compiler) instead of cached."""
    if torch.compiler.is_compiling():
        return _build_tap_resize_matrix(n_in, n_out, align_corners, dtype, device)
    return _cached_tap_resize_matrix(n_in, n_out, align_corners, dtype, device)


def resized_conv_saves_work(in_size: Tuple[int, int], out_size: Tuple[int, int], in_channels: int) -> bool:
    """Whether ``conv3x3_of_resized`` needs fewer multiply-adds than resizing first (per output
    channel): 9*C*h*w + the two axis products (3w*h*W*3 + 3h*H*W) against 9*C*H*W, with a 20%
    margin for the products' memory traffic."""
    (h, w), (H, W) = in_size, out_size
    low_res = 9 * in_channels * h * w + 9 * w * h * W + 3 * h * H * W
    return low_res < 0.8 * 9 * in_channels * H * W


def _resized_conv_rows(x: torch.Tensor, weight: torch.Tensor, size: Tuple[int, int],
                      align_corners: bool, accumulate: Optional[torch.Tensor]) -> torch.Tensor:
    """conv3x3_of_resized as a (B * C_out * H, W) matrix, added in place to ``accumulate`` when
    given (one GEMM with beta=1: no extra pass over the output, no new allocation)."""
    batch, _, h, w = x.shape
    height, width = size
    c_out = weight.shape[0]
    # one 1x1 convolution to every (C_out, dx, dy) tap: (B, C_out * 3 * 3, h, w)
    taps = weight.permute(0, 3, 2, 1).reshape(9 * c_out, -1, 1, 1)
    z = F.conv2d(x, taps)
    along_y = tap_resize_matrix(h, height, bool(align_corners), z.dtype, z.device)  # (H, 3h), [dy, y]
    along_x = tap_resize_matrix(w, width, bool(align_corners), z.dtype, z.device)   # (W, 3w), [dx, x]
    # sum over dy and y -> (B * C_out * 3 dx, H, w); no copy of a contiguous z (a channels-last
    # input gives a channels-last z: reshape copies it)
    rows = torch.matmul(along_y, z.reshape(batch * c_out * 3, 3 * h, w))
    # sum over dx and x -> (B * C_out * H, W)
    rows = rows.view(batch * c_out, 3, height, w).transpose(1, 2).reshape(-1, 3 * w)
    if accumulate is None:
        return torch.mm(rows, along_x.t())
    return accumulate.addmm_(rows, along_x.t())


def _check_weight(name: str, weight: torch.Tensor, in_channels: int, what: str) -> None:
    if weight.dim() != 4 or weight.shape[2:] != (3, 3) or weight.shape[1] != in_channels:
        raise ValueError(f"{name}: weight must be (C_out, {in_channels}, 3, 3) for {what}, "
                         f"got {tuple(weight.shape)}")


def conv3x3_of_resized(x: torch.Tensor, weight: torch.Tensor, size: Tuple[int, int],
                       align_corners: bool = False) -> torch.Tensor:
    """``F.conv2d(F.interpolate(x, size, mode='bilinear', align_corners), weight, padding=1)``.

    Args:
        x: (B, C_in, h, w) map.
        weight: (C_out, C_in, 3, 3) convolution weight (stride 1, padding 1, no dilation or groups).
        size: (H, W), the resized map's size.
    Returns:
        (B, C_out, H, W), without bias.
    """
    _check_weight('conv3x3_of_resized', weight, x.shape[1], f"a {x.shape[1]}-channel input")
    size = (int(size[0]), int(size[1]))
    rows = _resized_conv_rows(x, weight, size, align_corners, None)
    return rows.view(x.shape[0], weight.shape[0], *size)


def conv3x3_of_concat(maps: Sequence[torch.Tensor], weight: torch.Tensor,
                      bias: Optional[torch.Tensor], size: Tuple[int, int],
                      align_corners: bool = False) -> torch.Tensor:
    """The plain computation (mmseg's UPerHead): every map resized to ``size`` (a map already
    there is kept as is), concatenated, one 3x3 convolution. Same arguments and result as
    ``conv3x3_of_resized_concat``: (B, C_i, h_i, w_i) maps -> (B, C_out, H, W)."""
    static = is_static(*size, *(s for m in maps for s in m.shape[2:]))
    resized = [m if static and tuple(m.shape[2:]) == tuple(size) else
               F.interpolate(m, size=size, mode='bilinear', align_corners=align_corners) for m in maps]
    return F.conv2d(torch.cat(resized, 1), weight, bias, padding=1)


def conv3x3_of_resized_concat(maps: Sequence[torch.Tensor], weight: torch.Tensor,
                              bias: Optional[torch.Tensor], size: Tuple[int, int],
                              align_corners: bool = False) -> torch.Tensor:
    """``F.conv2d(cat([resize(m, size) for m in maps], 1), weight, bias, padding=1)``, one map
    at a time: maps already at ``size`` directly, coarser ones at their own resolution
    (``conv3x3_of_resized``) where that saves work (``resized_conv_saves_work``), else resized
    first. The low-resolution shares are accumulated in place into one buffer.

    Args:
        maps: (B, C_i, h_i, w_i) maps.
        weight: (C_out, sum C_i, 3, 3).
        bias: (C_out,) or None.
        size: (H, W).
    Returns:
        (B, C_out, H, W).
    """
    widths = [m.shape[1] for m in maps]
    _check_weight('conv3x3_of_resized_concat', weight, sum(widths), f"maps of {widths} channels")
    if not is_static(*size, *(s for m in maps for s in m.shape[2:])):
        # traced with symbolic sizes (ONNX export): which path saves work depends on the sizes, a
        # choice one graph cannot hold; the plain computation (every map resized first)
        return conv3x3_of_concat(maps, weight, bias, size, align_corners)
    size = (int(size[0]), int(size[1]))
    direct, low_res = None, None  # (B, C_out, H, W) and (B * C_out * H, W) partial sums
    for x, part in zip(maps, weight.split(widths, dim=1)):
        in_size = tuple(x.shape[2:])
        if in_size != size and resized_conv_saves_work(in_size, size, x.shape[1]):
            low_res = _resized_conv_rows(x, part, size, align_corners, low_res)
            continue
        if in_size != size:
            x = F.interpolate(x, size=size, mode='bilinear', align_corners=align_corners)
        y = F.conv2d(x, part, bias if direct is None else None, padding=1)
        direct = y if direct is None else direct.add_(y)
    if direct is None:
        out = low_res.view(maps[0].shape[0], weight.shape[0], *size)
        return out if bias is None else out + bias.view(1, -1, 1, 1)
    return direct if low_res is None else direct.add_(low_res.view(direct.shape))
