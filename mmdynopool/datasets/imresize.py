"""MATLAB-compatible bicubic resizing (``imresize(img, scale, 'bicubic')``).

The LR images of the published DIV2K / Set5 / Set14 benchmarks were made with
MATLAB's ``imresize``. Its bicubic mode differs from ``cv2.resize`` and from
``F.interpolate(mode='bicubic')``: the cubic kernel has ``a = -0.5`` (PyTorch
and OpenCV use ``-0.75``), on downscaling the kernel is widened by ``1/scale``
(antialiasing; OpenCV's INTER_CUBIC does not do it) and borders are mirrored
(``symmetric`` padding). This module re-implements that algorithm in PyTorch
(float arithmetic, rounded once at the end for 8-bit images), so the same
function makes LR training/eval inputs and the bicubic baseline's output.
"""
import math
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor


def cubic(x: Tensor) -> Tensor:
    """Keys' cubic convolution kernel with ``a = -0.5`` (MATLAB's)."""
    absx = x.abs()
    absx2, absx3 = absx**2, absx**3
    near = (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1)
    far = (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * ((absx > 1) &
                                                         (absx <= 2))
    return near + far


def contributions(in_length: int,
                  out_length: int,
                  scale: float,
                  antialias: bool = True) -> Tuple[Tensor, Tensor]:
    """Weights and (0-based, mirrored) source indices of one axis.

    Returns:
        tuple[Tensor, Tensor]: ``weights`` (out_length, taps) float64 and
        ``indices`` (out_length, taps) int64, rows summing to 1.
    """
    kernel_width = 4.0
    shrink = scale < 1 and antialias
    if shrink:  # widen the kernel: a low-pass filter at the output rate
        kernel_width /= scale
    x = torch.arange(1, out_length + 1, dtype=torch.float64)
    # Output pixel x (1-based) maps to input coordinate u (1-based).
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)
    distance = u[:, None] - indices
    weights = scale * cubic(distance * scale) if shrink else cubic(distance)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # MATLAB pads with 'symmetric' mirroring: -1 -> 0, n -> n-1 (0-based).
    period = 2 * in_length
    zero_based = torch.remainder(indices.long() - 1, period)
    mirrored = torch.where(zero_based >= in_length, period - 1 - zero_based,
                           zero_based)
    return weights, mirrored


def resize_axis(x: Tensor, dim: int, out_length: int, scale: float,
                antialias: bool) -> Tensor:
    weights, indices = contributions(x.shape[dim], out_length, scale,
                                     antialias)
    weights = weights.to(device=x.device, dtype=x.dtype)
    indices = indices.to(x.device)
    shape = [1] * x.dim()
    shape[dim] = out_length
    out = 0
    for tap in range(indices.shape[1]):  # one gather per tap: little memory
        out = out + x.index_select(dim, indices[:, tap]) * \
            weights[:, tap].view(shape)
    return out


def imresize(x: Tensor,
             scale: Optional[float] = None,
             size: Optional[Sequence[int]] = None,
             antialias: bool = True) -> Tensor:
    """MATLAB ``imresize(x, scale, 'bicubic')`` on the last two dims.

    Args:
        x (Tensor): Floating tensor ``(..., H, W)``.
        scale (float, optional): Resize factor (``1/4`` shrinks 4x). The
            output size is ``ceil(scale * H)`` as in MATLAB.
        size (Sequence[int], optional): ``(H_out, W_out)`` instead of
            ``scale``; the per-axis factors are ``H_out / H`` etc.
        antialias (bool): Widen the kernel when shrinking (MATLAB's
            default). Default: True.

    Returns:
        Tensor: ``(..., H_out, W_out)``, same dtype as ``x``.
    """
    if not torch.is_tensor(x) or not x.is_floating_point() or x.dim() < 2:
        raise TypeError('imresize expects a floating tensor (..., H, W); '
                        'convert 8-bit images with imresize_uint8')
    if (scale is None) == (size is None):
        raise ValueError('give exactly one of scale and size')
    in_h, in_w = x.shape[-2:]
    if size is None:
        if not scale > 0:
            raise ValueError(f'scale must be > 0, got {scale}')
        out_h, out_w = (int(math.ceil(scale * in_h - 1e-9)),
                        int(math.ceil(scale * in_w - 1e-9)))
        scale_h = scale_w = float(scale)
    else:
        out_h, out_w = int(size[0]), int(size[1])
        scale_h, scale_w = out_h / in_h, out_w / in_w
    # MATLAB resizes along the axis that shrinks most first.
    order = [(-2, out_h, scale_h), (-1, out_w, scale_w)]
    order.sort(key=lambda item: item[2])
    for dim, length, axis_scale in order:
        x = resize_axis(x, x.dim() + dim, length, axis_scale, antialias)
    return x


def imresize_uint8(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB-like bicubic resize of an 8-bit ``(H, W, C)`` / ``(H, W)``
    image, computed in float64 and rounded once."""
    if img.dtype != np.uint8:
        raise TypeError(f'imresize_uint8 expects a uint8 image, got '
                        f'{img.dtype}')
    chw = torch.from_numpy(np.ascontiguousarray(img)).double()
    if img.ndim == 3:
        chw = chw.permute(2, 0, 1)
    out = imresize(chw, scale=scale).round_().clamp_(0, 255)
    if img.ndim == 3:
        out = out.permute(1, 2, 0)
    return out.to(torch.uint8).numpy()
