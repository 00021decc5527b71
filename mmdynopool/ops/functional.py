"""Functional core of DynOPool (Jang et al., CVPR 2022).

The spec is ``shared/docs/dynopool-method.md``. In brief, for a learnable
``alpha = (1/r_h, 1/r_w)``:

* the output size is ``H_out = max(min_size, round(H_in / alpha_h))``
  (likewise for W);
* the input is cut into ``H_out x W_out`` cells, each sampled bilinearly at
  the centres of its four quarter-cells (border values outside the outermost
  pixel centres), and the four samples are max- (or avg-) aggregated;
* the rounding is bridged by the straight-through size
  ``H_hat = round(r*H_in) + r*H_in - sg(r*H_in)`` so the loss reaches
  ``alpha`` through the sampling positions.

This module holds what every backend shares: argument checks, the size
rules, the exact query positions of an axis, and the backend choice. A
backend is a ``torch.autograd.Function`` with one contract::

    Function.apply(x, alpha, alpha_values, out_h, out_w, aggregation,
                   pinned_h, pinned_w) -> out

``out`` is ``(N, C, out_h, out_w)`` in ``x``'s memory format (channels-last
or contiguous); the backward returns the gradient of ``x`` (in ``x``'s
memory format) and of ``alpha`` (shape ``(2,)``, zero on a pinned axis, the
mean of the one-sided derivatives where a query point sits on a pixel
centre; see :func:`position_sensitivity`), each only where it is needed.
``alpha_values`` are ``alpha``'s host values, so that no backend reads a
GPU ``alpha`` back. Three backends fulfil it:

* ``'torch'`` (:mod:`.torch_backend`): PyTorch's kernels, any device;
  bitwise the deploy form in the forward;
* ``'cpu'`` (:mod:`.cpu_backend`): fused C++ kernels for CPU tensors that
  compute each output cell straight from ``x``, built on first use;
* ``'triton'`` (:mod:`.triton_backend`): the same fused design as Triton
  kernels; CUDA, or CPU tensors under Triton's interpreter
  (``TRITON_INTERPRET=1``).

``MMDYNOPOOL_BACKEND=auto|torch|cpu|triton`` chooses (see
:func:`resolve_backend`).
"""
import math
import os
import warnings
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

AGGREGATIONS = ('max', 'avg')


def round_half_up(value: float) -> int:
    """Round to the nearest integer, halves upwards (not banker's rounding),
    so that sizes do not flip between even and odd neighbours."""
    return int(math.floor(value + 0.5))


def check_ratio(value: float, name: str) -> float:
    """Validate one scale factor (or alpha) component."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f'{name} must be a number, got {type(value).__name__}')
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f'{name} must be finite and > 0, got {value}; a '
                         'scale factor r resizes H to round(r * H)')
    return value


def pair_of_ratios(value, name: str) -> Tuple[float, float]:
    """``r`` or ``(r_h, r_w)`` as a validated pair of floats."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f'{name} must be a number or a pair (r_h, r_w), '
                             f'got {len(value)} values')
        return (check_ratio(value[0], f'{name}[0]'),
                check_ratio(value[1], f'{name}[1]'))
    ratio = check_ratio(value, name)
    return ratio, ratio


def check_aggregation(aggregation: str) -> str:
    if aggregation not in AGGREGATIONS:
        raise ValueError(f'aggregation must be one of {AGGREGATIONS}, got '
                         f'{aggregation!r}')
    return aggregation


def check_feature_map(x: Tensor, name: str = 'x') -> None:
    """DynOPool takes non-empty floating (N, C, H, W) tensors."""
    if not isinstance(x, Tensor):
        raise TypeError(f'{name} must be a torch.Tensor, got '
                        f'{type(x).__name__}')
    if x.dim() != 4:
        raise ValueError(f'{name} must be 4-D (N, C, H, W), got shape '
                         f'{tuple(x.shape)}; add a batch dimension with '
                         f'{name}.unsqueeze(0) for a single image')
    if x.numel() == 0:
        raise ValueError(f'{name} must not be empty, got shape '
                         f'{tuple(x.shape)}')
    if not x.is_floating_point():
        raise TypeError(f'{name} must be a floating point tensor, got '
                        f'{x.dtype}; convert it with {name}.float()')


def output_size(in_size: int, ratio: float, min_size: int = 1) -> int:
    """Integer output length of one axis: ``max(min_size, round(r*in))``."""
    return max(int(min_size), 1, round_half_up(ratio * in_size))


def straight_through_size(alpha: Tensor,
                          in_size,
                          out_size: int,
                          pinned: bool = False) -> Tensor:
    """The spec's ``H_hat``: value ``out_size``, gradient of ``in_size/alpha``.

    Args:
        alpha (Tensor): 0-d tensor, one component of ``alpha = 1/r``.
        in_size (int | float | Tensor): input length; a tensor with gradient
            when it is itself a learned (upstream) size, which makes this
            size differentiable w.r.t. every scale factor before it.
        out_size (int): the rounded output length (the value).
        pinned (bool): the size is held at ``min_size`` or at 1, so it does
            not change with ``alpha``: no gradient.
    """
    continuous = in_size / alpha
    if pinned:
        continuous = continuous.detach()
    return out_size + (continuous - continuous.detach())


def query_positions(in_size: int, out_size: int, device=None,
                    dtype=torch.float64) -> Tensor:
    """Source pixel coordinates of the ``2*out_size`` query points of an
    axis, unclamped (``align_corners=False`` convention)."""
    k = torch.arange(2 * out_size, device=device, dtype=dtype)
    return (k + 0.5) * (in_size / (2.0 * out_size)) - 0.5


def position_numerators(k, in_size: int, out_size: int):
    """Query position ``k`` of an axis is ``numerator / (4 * out_size)``
    exactly, with ``numerator = (2k + 1) * in_size - 2 * out_size``; ``k``
    an integer tensor or numpy array (the result is of the same kind)."""
    return (2 * k + 1) * in_size - 2 * out_size


def position_sensitivity(in_size: int, out_size: int, alpha: float,
                         device=None) -> Tuple[Tensor, Tensor, Tensor]:
    """Per query row (or column) of one axis: where it reads the input and
    how its sample moves with ``alpha``.

    A sample's derivative along the axis is a difference of neighbouring
    input rows, weighted by ``d position / d alpha``. Between pixel centres
    that is the difference across the interval the point lies in. On a
    pixel centre the interpolant has a kink, and the two one-sided
    derivatives differ; there the gradient takes their mean (half of each
    neighbouring difference, a central difference). A one-sided choice would
    push ``alpha`` one way at every kink, and every DynOPool starts on one:
    at ``r = 0.5`` on even sizes all its query points sit on pixel centres.

    Returns:
        tuple: ``lower`` (int64 index of the difference above each point,
        clamped to a valid one), ``slopes`` (float64, shape ``(2, 2*out)``:
        the weights of the difference at ``lower`` and of the one below it,
        ``lower - 1``; zero where the point is clamped to the border and
        does not move, or where that side lies beyond the border) and the
        unclamped positions.
    """
    positions = query_positions(in_size, out_size, device=device)
    # The integer part of each position and whether it is a pixel centre,
    # exactly (no float rounding).
    numerator = position_numerators(
        torch.arange(2 * out_size, device=device), in_size, out_size)
    lower = torch.div(numerator, 4 * out_size, rounding_mode='floor')
    on_pixel = numerator == lower * (4 * out_size)
    # s_k = (k + 0.5) * in / (2 * H_hat) - 0.5, H_hat = in / alpha
    # => d s_k / d alpha = (s_k + 0.5) * in / (H_out * alpha**2).
    slope = (positions + 0.5) * in_size / (out_size * alpha * alpha)
    zero = torch.zeros_like(slope)
    # Outside the outermost pixel centres the value is the border value:
    # moving the point (on that side) does not change the sample.
    between = (lower >= 0) & (lower < in_size - 1) & ~on_pixel
    has_above = on_pixel & (lower >= 0) & (lower <= in_size - 2)
    has_below = on_pixel & (lower >= 1) & (lower <= in_size - 1)
    # On the last pixel centre the only difference, the one below, is the
    # one at the clamped index itself: it goes in as 'above', so that
    # 'below' always means the difference at lower - 1 (it was taken one
    # row too low before: the alpha gradient of upsampling layers whose
    # last query point hits the last pixel centre was wrong).
    last = has_below & (lower == in_size - 1) & (in_size >= 2)
    above = torch.where(between, slope,
                        torch.where(has_above | last, slope / 2, zero))
    below = torch.where(has_below & ~last, slope / 2, zero)
    lower = lower.clamp(0, max(in_size - 2, 0))
    return lower, torch.stack([above, below]), positions


def memory_format_of(x: Tensor) -> torch.memory_format:
    """``x``'s layout, which every backend's output and input gradient
    keep: channels-last or (taken for anything else) contiguous."""
    if not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def dense(x: Tensor) -> Tensor:
    """``x`` dense in its own memory format (a copy only where it is not):
    the fused kernels walk it in memory order, and the input gradient they
    write keeps ``x``'s layout."""
    return x.contiguous(memory_format=memory_format_of(x))


def hits_pixel_centres(in_size: int, out_size: int) -> bool:
    """Whether any of an axis' query points sits on a pixel centre (host
    arithmetic: no device work)."""
    numerators = position_numerators(
        np.arange(2 * out_size, dtype=np.int64), in_size, out_size)
    return bool(np.any(numerators % (4 * out_size) == 0))


def alpha_to_sizes(alpha_values: Sequence[float], in_h: int, in_w: int,
                   min_size: int) -> Tuple[int, int, bool, bool]:
    """Output sizes for ``alpha`` and whether each is pinned (not learnable
    at this point because it is held at ``min_size``)."""
    out_h = output_size(in_h, 1.0 / alpha_values[0], min_size)
    out_w = output_size(in_w, 1.0 / alpha_values[1], min_size)
    pinned_h = round_half_up(in_h / alpha_values[0]) < out_h
    pinned_w = round_half_up(in_w / alpha_values[1]) < out_w
    return out_h, out_w, pinned_h, pinned_w


def check_alpha(alpha: Tensor) -> Tuple[float, float]:
    """Host values of ``alpha``, with a clear error when they are unusable."""
    if alpha.shape != (2, ):
        raise ValueError(f'alpha must have shape (2,) holding (1/r_h, '
                         f'1/r_w), got {tuple(alpha.shape)}')
    values = alpha.detach().double().tolist()
    for name, value in zip(('alpha[0] (1/r_h)', 'alpha[1] (1/r_w)'), values):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(
                f'DynOPool {name} = {value} is not finite and positive; the '
                'training loss probably diverged (lower the learning rate of '
                'alpha) or the checkpoint is corrupt')
    return values[0], values[1]


def dynopool2d(x: Tensor,
               alpha: Tensor,
               aggregation: str = 'max',
               min_size: int = 1,
               alpha_values: Optional[Sequence[float]] = None,
               backend: Optional[str] = None) -> Tensor:
    """DynOPool forward for a given ``alpha = (1/r_h, 1/r_w)``.

    Args:
        x (Tensor): (N, C, H, W) floating point input.
        alpha (Tensor): shape (2,), inverse scale factors.
        aggregation (str): ``'max'`` (the paper) or ``'avg'``.
        min_size (int): lower bound of each output side.
        alpha_values (Sequence[float], optional): ``alpha``'s values on the
            host, when the caller has already read them (from
            :func:`check_alpha`): every read of a GPU ``alpha`` waits for the
            device, and the forward needs only one.
        backend (str, optional): ``'auto'``, ``'torch'``, ``'cpu'`` or
            ``'triton'``;
            default: the environment variable ``MMDYNOPOOL_BACKEND``, else
            ``'auto'`` (see :func:`resolve_backend`).

    Returns:
        Tensor: (N, C, round(H/alpha_h), round(W/alpha_w)).
    """
    check_feature_map(x)
    check_aggregation(aggregation)
    if alpha_values is None:
        alpha_values = check_alpha(alpha)
    # int(): under tracing shapes are tensors, and float32 arithmetic on them
    # could round a size differently from eager mode.
    out_h, out_w, pinned_h, pinned_w = alpha_to_sizes(
        alpha_values, int(x.shape[2]), int(x.shape[3]), min_size)
    function = backend_function(resolve_backend(x, backend))
    return function.apply(x, alpha, tuple(alpha_values), out_h, out_w,
                          aggregation, pinned_h, pinned_w)


BACKEND_ENV = 'MMDYNOPOOL_BACKEND'
BACKENDS = ('auto', 'torch', 'cpu', 'triton')
# Whether the Triton kernels have passed the CUDA tests compiled on a real
# GPU. Until they have, 'auto' keeps CUDA tensors on the torch backend, so
# that nobody runs kernels that only Triton's interpreter has checked;
# MMDYNOPOOL_BACKEND=triton opts in.
TRITON_VALIDATED_ON_CUDA = False


def check_backend(backend: Optional[str]) -> str:
    """The backend asked for: ``backend``, else ``$MMDYNOPOOL_BACKEND``,
    else ``'auto'``."""
    if backend is None:
        backend = os.environ.get(BACKEND_ENV, '') or 'auto'
        name = f'the environment variable {BACKEND_ENV}'
    else:
        name = 'backend'
    if backend not in BACKENDS:
        raise ValueError(f'{name} must be one of {BACKENDS}, got '
                         f'{backend!r}')
    return backend


def resolve_backend(x: Tensor, backend: Optional[str] = None) -> str:
    """``'torch'``, ``'cpu'`` or ``'triton'``: the backend that runs
    DynOPool on ``x``.

    ``'auto'`` takes the fused kernels where they are validated and run:
    the C++ kernels for CPU tensors (built on first use; where they cannot
    be built, the torch backend, with one warning that says why), Triton
    for CUDA tensors when triton imports (once the kernels are validated on
    a GPU, see ``TRITON_VALIDATED_ON_CUDA``), and the torch backend
    otherwise. ``'cpu'`` and ``'triton'`` never fall back: where their
    kernels cannot run they raise an error that says what to change.
    """
    backend = check_backend(backend)
    if backend == 'auto':
        if x.device.type == 'cpu':
            from . import cpu_backend
            if x.dtype in cpu_backend.DTYPES and cpu_kernels_or_warn():
                return 'cpu'
        elif x.is_cuda and TRITON_VALIDATED_ON_CUDA:
            from . import triton_backend
            if triton_backend.triton_available():
                return 'triton'
        return 'torch'
    if backend == 'triton':
        from . import triton_backend
        triton_backend.check_can_run(x)
    elif backend == 'cpu':
        from . import cpu_backend
        cpu_backend.check_can_run(x)
    return backend


def check_backend_dtype(x: Tensor, backend: str, dtypes) -> None:
    """A fused backend takes ``dtypes`` only: an error that says what to
    change otherwise."""
    if x.dtype not in dtypes:
        raise TypeError(f'the {backend} backend takes {dtypes}, got x of '
                        f'{x.dtype}; convert x or set MMDYNOPOOL_BACKEND=torch')


_warned_cpu_fallback = False


def cpu_kernels_or_warn() -> bool:
    """Whether the C++ kernels are built (building them on the first call);
    where they cannot be, warn once that the torch backend runs instead."""
    global _warned_cpu_fallback
    from . import cpu_backend
    if cpu_backend.kernels_available():
        return True
    if not _warned_cpu_fallback:
        _warned_cpu_fallback = True
        warnings.warn(
            'DynOPool runs on its torch backend on the CPU (slower): its C++ '
            f'kernels could not be built ({cpu_backend.build_error()}); '
            f'{cpu_backend.FIX_HINT}', RuntimeWarning)
    return False


# Each backend's module (imported on first use: triton is optional) and its
# autograd Function (whose name jit traces record, see get_flops.py).
BACKEND_FUNCTIONS = {
    'torch': ('torch_backend', 'DynOPoolFunction'),
    'cpu': ('cpu_backend', 'CPUDynOPoolFunction'),
    'triton': ('triton_backend', 'TritonDynOPoolFunction'),
}


def backend_function(backend: str):
    """The autograd Function of a resolved backend (see the module
    docstring for the contract they share)."""
    import importlib
    module, name = BACKEND_FUNCTIONS[backend]
    return getattr(importlib.import_module(f'.{module}', __package__), name)
