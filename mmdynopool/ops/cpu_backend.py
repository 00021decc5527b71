"""The CPU backend of DynOPool: fused C++ kernels (``csrc/dynopool_cpu.cpp``).

The torch backend builds the ``2*H_out x 2*W_out`` query grid with
PyTorch's resize and walks full-size temporaries again in the backward;
these kernels compute each output cell straight from ``x`` (its four
bilinear samples, then max or mean, with a uint8 code of the winner) and
give both gradients in one pass over the cells (see the source's header).
They are the CPU's counterpart of the Triton kernels, with one difference
that matters on the CPU: a work unit owns whole planes (NCHW) or a block of
channels (channels-last), so the input gradient is accumulated without
atomics and ``alpha``'s gradient is summed in a fixed order.

The sampling tables come from this module, with PyTorch's own
``interpolate`` positions and weights (see :func:`axis_tables`); the
samples are rounded to ``x``'s dtype before they are compared, as the
deploy form's query grid is. The forward equals the deploy form
``max_pool2d(interpolate(x, 2*size), 2)`` within rounding (1e-6 in fp32),
not bitwise: PyTorch's resize adds its four products in another order.
Where bitwise equality with the deploy form matters, use
``MMDYNOPOOL_BACKEND=torch``.

The kernels are compiled on first use by PyTorch's JIT extension loader
(about 20 s; it needs ``ninja``, which ``pip install mmdynopool`` brings,
and a C++ compiler) and cached in ``$TORCH_EXTENSIONS_DIR`` (default
``~/.cache/torch_extensions``) for later processes.
"""
import os.path as osp
import sys
import threading
from typing import Optional, Tuple

import torch
from torch import Tensor

from .functional import (check_backend_dtype, dense, memory_format_of,
                         position_sensitivity)

SOURCE = osp.join(osp.dirname(osp.abspath(__file__)), 'csrc',
                  'dynopool_cpu.cpp')
EXTENSION_NAME = 'mmdynopool_dynopool_cpu'
# Vector instructions per PyTorch's own CPU capability (what its kernels
# dispatch to here). The capability is part of the extension's name, so a
# cache shared by machines of different CPUs (a home directory on a
# cluster) never hands one a build it cannot run.
CAPABILITY_FLAGS = {
    'AVX2': ['-mavx2', '-mfma', '-mf16c'],
    'AVX512': ['-mavx2', '-mfma', '-mf16c', '-mavx512f', '-mavx512bw',
               '-mavx512vl', '-mavx512dq'],
}
# at::parallel_for is OpenMP pragmas in PyTorch's headers: without -fopenmp
# the kernels run on one thread. (The extension then links libgomp.so.1,
# which resolves to the copy torch has already loaded: one thread pool.)
OPENMP_FLAGS = ['-fopenmp'] if sys.platform.startswith('linux') and \
    'OpenMP' in torch.__config__.parallel_info() else []
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
FIX_HINT = ('install ninja (pip install ninja) and a C++ compiler (g++ or '
            'clang++) with the Python headers, or set '
            'MMDYNOPOOL_BACKEND=torch')

_lock = threading.Lock()
_kernels = None
_build_error: Optional[str] = None


def kernels():
    """The compiled extension module, built (or loaded from PyTorch's
    extension cache) on the first call; a clear error where it cannot be."""
    global _kernels, _build_error
    if _kernels is not None:  # every DynOPool call asks: no lock once built
        return _kernels
    with _lock:
        if _kernels is None and _build_error is None:
            try:
                from torch.utils.cpp_extension import load
                capability = cpu_capability()
                _kernels = load(
                    name=f'{EXTENSION_NAME}_{capability.lower()}',
                    sources=[SOURCE],
                    extra_cflags=['-O3'] + OPENMP_FLAGS +
                    CAPABILITY_FLAGS.get(capability, []),
                    extra_ldflags=OPENMP_FLAGS,
                    verbose=False)
            except Exception as error:  # compiler, ninja, headers, ...
                _build_error = f'{type(error).__name__}: {error}'
        if _kernels is None:
            raise RuntimeError(
                'the cpu backend of DynOPool could not build its C++ kernels '
                f'({_build_error.strip()[-600:]}); {FIX_HINT}')
    return _kernels


def cpu_capability() -> str:
    """PyTorch's CPU capability here (``'AVX512'``, ``'AVX2'``,
    ``'DEFAULT'``, ...)."""
    try:
        return torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # torch < 2.0
        return 'DEFAULT'


def kernels_available() -> bool:
    """Whether the kernels are (or can be) built here; builds them."""
    try:
        kernels()
    except RuntimeError:
        return False
    return True


def build_error() -> Optional[str]:
    """Why the kernels could not be built (None: not tried, or built)."""
    return _build_error


def check_can_run(x: Tensor) -> None:
    """Raise an error that says what to change where the kernels cannot run
    ``x`` (``MMDYNOPOOL_BACKEND=cpu`` never falls back silently)."""
    if x.device.type != 'cpu':
        raise RuntimeError(
            f'MMDYNOPOOL_BACKEND=cpu runs CPU tensors, got a tensor on '
            f'{x.device}; set MMDYNOPOOL_BACKEND=auto (or triton for CUDA)')
    check_backend_dtype(x, 'cpu', DTYPES)
    kernels()


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The kernels' arithmetic: fp64 for fp64 inputs, fp32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def axis_tables(in_size: int, out_size: int, alpha: float,
                dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
    """The tables the kernels read for one axis of ``2 * out_size`` query
    points: int32 ``(3, 2*out)`` = the two rows a sample reads and the row
    of the difference above it (for ``alpha``); ``(4, 2*out)`` in the
    kernels' arithmetic = the rows' weights, then the weights of the
    differences above and below (see
    :func:`~mmdynopool.ops.functional.position_sensitivity`).

    The rows and weights follow PyTorch's CPU ``interpolate``
    (``align_corners=False``): ``scale = in / (2*out)`` in the arithmetic
    dtype, the source position ``scale * (k + 0.5) - 0.5`` with one
    rounding (PyTorch's kernels get a fused multiply-add; the product of two
    fp32 values is exact in fp64, so fp64 then rounding is that), clamped
    at 0. For fp16 / bf16 inputs the weights stay fp32 (the arithmetic is
    fp32 throughout, as in the Triton kernels)."""
    acc = accumulation_dtype(dtype)
    queries = 2 * out_size
    k = torch.arange(queries, dtype=torch.float64)
    scale = torch.tensor(float(in_size), dtype=acc) / queries
    if acc == torch.float64:
        source = scale * (k + 0.5) - 0.5
    else:
        source = (scale.double() * (k + 0.5) - 0.5).to(acc)
    source = source.clamp(min=0)
    row0 = source.floor().long().clamp(max=in_size - 1)
    weight1 = (source - row0.to(acc)).clamp(0, 1)
    weight0 = 1 - weight1
    row1 = row0 + (row0 < in_size - 1).long()
    lower, (above, below), _ = position_sensitivity(in_size, out_size, alpha)
    index = torch.stack([row0, row1, lower]).int()
    weights = torch.stack([weight0, weight1, above.to(acc), below.to(acc)])
    return index.contiguous(), weights.contiguous()


class CPUDynOPoolFunction(torch.autograd.Function):
    """DynOPool by the fused C++ kernels, with gradients for ``x`` and
    ``alpha`` (the backend contract of :mod:`mmdynopool.ops.functional`)."""

    @staticmethod
    def forward(ctx, x: Tensor, alpha: Tensor, alpha_values: Tuple[float,
                                                                   float],
                out_h: int, out_w: int, aggregation: str, pinned_h: bool,
                pinned_w: bool) -> Tensor:
        layout = memory_format_of(x)
        channels_last = layout == torch.channels_last
        x = dense(x)
        tables = (axis_tables(x.shape[2], out_h, alpha_values[0], x.dtype) +
                  axis_tables(x.shape[3], out_w, alpha_values[1], x.dtype))
        out, code = kernels().forward(x, *tables, aggregation == 'max',
                                      channels_last)
        ctx.save_for_backward(x, code if aggregation == 'max' else None)
        ctx.tables = tables
        ctx.channels_last = channels_last
        ctx.layout = layout
        ctx.alpha_dtype = alpha.dtype
        # An axis learns unless pinned or of a single row (no difference).
        ctx.learn = (not pinned_h and x.shape[2] > 1, not pinned_w
                     and x.shape[3] > 1)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, code = ctx.saved_tensors
        want_x, want_alpha = ctx.needs_input_grad[:2]
        grad = grad_out.to(x.dtype).contiguous(memory_format=ctx.layout)
        learn_h, learn_w = (want_alpha and learn for learn in ctx.learn)
        grad_x, grad_alpha = kernels().backward(
            x, grad, torch.empty(0, dtype=torch.uint8) if code is None else
            code, *ctx.tables, want_x, learn_h, learn_w, ctx.channels_last)
        return (grad_x if want_x else None,
                grad_alpha.to(ctx.alpha_dtype) if want_alpha else None, None,
                None, None, None, None, None)
