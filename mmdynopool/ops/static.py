"""The deploy form of a trained DynOPool layer.

A trained layer's output size rule is ``max(min_size, round(r * H))`` with
``r = 1 / alpha`` and ``alpha`` a float32 parameter; eager mode evaluates it
in double precision. Exporters (``torch.export``, the dynamo ONNX exporter)
and ``torch.compile(dynamic=True)`` see the input size as a symbol; a float
formula of a symbol is carried out in *float32* by the ONNX exporter, which
can round a size differently from eager mode. For symbolic sizes the rule is
therefore written in integer arithmetic, which is exact: with
``alpha = P / Q`` (``P``, ``Q`` integers, ``Q`` a power of two, as every
float32 value is),

    round_half_up(H / alpha) = floor(H / alpha + 1/2) = (2*Q*H + P) // (2*P)

and it exports as a handful of int64 shape operations (``Shape``, ``Mul``,
``Add``, ``Div``, ``Max``) feeding ``Resize``: one ONNX model serves every
input height and width. For concrete (int) sizes the eager rule of
:func:`~mmdynopool.ops.functional.output_size` is used, and both agree (see
``tests/deploy/test_static_export.py``).
"""
import functools
import math
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from .functional import (check_aggregation, check_alpha, check_feature_map,
                         output_size, pair_of_ratios)

Size = Union[int, torch.SymInt]

# Largest denominator Q for which 2*Q*H stays far inside int64 for any
# realistic feature size (H < 2**20).
MAX_DENOMINATOR = 2**40


@functools.lru_cache(maxsize=1024)
def float32_alpha(ratio: float) -> float:
    """``1 / ratio`` rounded to float32: the ``alpha`` a DynOPool stores."""
    alpha = torch.tensor(1.0 / ratio, dtype=torch.float32).item()
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f'ratio {ratio!r} has no float32 alpha = 1/ratio; '
                         'use a ratio within (1e-38, 1e38)')
    return alpha


def snap_ratio(ratio: float) -> float:
    """The ratio a DynOPool with ``init_ratio=ratio`` actually has:
    ``1 / alpha`` with ``alpha = float32(1 / ratio)`` (identity for ratios
    read off a DynOPool)."""
    return 1.0 / float32_alpha(ratio)


@functools.lru_cache(maxsize=1024)
def alpha_fraction(ratio: float) -> Tuple[int, int]:
    """``(P, Q)`` with ``float32(1 / ratio) == P / Q`` exactly, ``Q`` a power
    of two (the integer form of the size rule)."""
    mantissa, exponent = math.frexp(float32_alpha(ratio))
    numerator, exponent = int(mantissa * 2**24), exponent - 24
    while numerator % 2 == 0:
        numerator //= 2
        exponent += 1
    if exponent >= 0:
        return numerator << exponent, 1
    return numerator, 1 << -exponent


def symbolic_output_size(in_size: Size, ratio: float,
                         min_size: int = 1) -> Size:
    """``max(min_size, round_half_up(in_size / alpha))`` for a symbolic (or
    int) ``in_size``, in integer arithmetic (exact; exports to int64 ONNX
    shape ops). ``alpha = float32(1 / ratio)``."""
    p, q = alpha_fraction(ratio)
    if q > MAX_DENOMINATOR:  # tiny alpha: fall back to the float formula
        size = math.floor(snap_ratio(ratio) * in_size + 0.5)
    else:
        size = (2 * q * in_size + p) // (2 * p)
    return torch.sym_max(size, max(int(min_size), 1))


def is_symbolic(size) -> bool:
    return isinstance(size, torch.SymInt)


def static_output_size(in_size: Size, ratio: float, min_size: int = 1) -> Size:
    """The output length of one axis: the eager rule for an int, the exact
    integer rule for a symbolic size (export / dynamic compile)."""
    if is_symbolic(in_size):
        return symbolic_output_size(in_size, ratio, min_size)
    return output_size(int(in_size), ratio, min_size)


def static_dynopool2d(x: Tensor, ratio: Tuple[float, float],
                      aggregation: str = 'max', min_size: int = 1) -> Tensor:
    """DynOPool at a fixed ratio, as ``pool(interpolate(x, 2*size), 2)``.

    Traceable with symbolic input sizes (``torch.export`` with dynamic
    height / width, ``torch.compile(dynamic=True)``): the size rule is then
    evaluated in exact integer arithmetic on the symbolic shape.
    """
    out_h = static_output_size(x.shape[2], ratio[0], min_size)
    out_w = static_output_size(x.shape[3], ratio[1], min_size)
    queries = F.interpolate(
        x, size=(2 * out_h, 2 * out_w), mode='bilinear', align_corners=False)
    if aggregation == 'max':
        return F.max_pool2d(queries, 2)
    return F.avg_pool2d(queries, 2)


@MODELS.register_module()
class StaticDynOPool(nn.Module):
    """A frozen DynOPool: no parameters (its ``alpha`` is a buffer), no
    straight-through code.

    Computes exactly what the trained :class:`DynOPool` computes, with its
    learned ratio fixed (the output size rule stays ``round(r * H)`` for any
    input size). Exportable to ONNX with dynamic height and width (see the
    module docstring).

    Args:
        ratio (float | tuple[float, float]): The fixed ``(r_h, r_w)``. Like a
            DynOPool's, it is stored as ``1 / alpha`` with a float32
            ``alpha = 1 / ratio`` (a change below 1e-7 relative, none at all
            for ratios read off a DynOPool), so that the integer form of the
            size rule is exact.
        aggregation (str): ``'max'`` or ``'avg'``.
        min_size (int): Lower bound of each output side.
    """

    def __init__(self,
                 ratio: Sequence[float],
                 aggregation: str = 'max',
                 min_size: int = 1) -> None:
        super().__init__()
        r_h, r_w = pair_of_ratios(ratio, 'ratio')
        self.ratio = (snap_ratio(r_h), snap_ratio(r_w))
        self.aggregation = check_aggregation(aggregation)
        self.min_size = int(min_size)
        # The ratio also lives in the state dict, as the DynOPool's ``alpha``
        # under the same key, so checkpoints move between the learnable and
        # the frozen model (e.g. one saved after FreezeDynOPoolHook's
        # ``freeze_at_iter`` loads into the config's unfrozen model). The
        # forward never reads it: the sizes come from the host ``ratio``.
        self.register_buffer(
            'alpha',
            torch.tensor([float32_alpha(r_h), float32_alpha(r_w)],
                         dtype=torch.float32))

    def _load_from_state_dict(self, state_dict, prefix, *args,
                              **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if prefix + 'alpha' in state_dict:  # the loaded alpha sets the ratio
            alpha_h, alpha_w = check_alpha(self.alpha)
            self.ratio = (snap_ratio(1.0 / alpha_h), snap_ratio(1.0 / alpha_w))

    def output_size(self, h: int, w: int) -> Tuple[int, int]:
        return (static_output_size(h, self.ratio[0], self.min_size),
                static_output_size(w, self.ratio[1], self.min_size))

    def forward(self, x: Tensor) -> Tensor:
        if not torch.compiler.is_compiling():
            check_feature_map(x)
        return static_dynopool2d(x, self.ratio, self.aggregation,
                                 self.min_size)

    def extra_repr(self) -> str:
        return (f'ratio=({self.ratio[0]:.4f}, {self.ratio[1]:.4f}), '
                f'aggregation={self.aggregation!r}, min_size={self.min_size}')
