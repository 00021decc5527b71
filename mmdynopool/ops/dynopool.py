"""The DynOPool layer: a resizing step whose output size is learned."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.registry import MODELS
from torch import Tensor

from .functional import (alpha_to_sizes, check_aggregation, check_alpha,
                         dynopool2d, pair_of_ratios)

Ratio = Union[float, Sequence[float]]

DEFAULT_RATIO_RANGE = (1.0 / 16, 4.0)


def check_ratio_range(ratio_range: Sequence[float]) -> Tuple[float, float]:
    if not isinstance(ratio_range, (list, tuple)) or len(ratio_range) != 2:
        raise ValueError('ratio_range must be a pair (r_min, r_max), got '
                         f'{ratio_range!r}')
    r_min, r_max = pair_of_ratios(tuple(ratio_range), 'ratio_range')
    if r_min > r_max:
        raise ValueError(f'ratio_range must be (r_min, r_max) with r_min <= '
                         f'r_max, got {tuple(ratio_range)}; swap the values')
    return r_min, r_max


def check_min_size(min_size: int) -> int:
    if isinstance(min_size, bool) or not isinstance(min_size, int) or \
            min_size < 1:
        raise ValueError(f'min_size must be an integer >= 1, got {min_size!r}')
    return min_size


@MODELS.register_module()
class DynOPool(nn.Module):
    """Dynamically optimised pooling: resize by a learned scale per axis.

    Replaces a fixed resizing step (a stride-2 pool or convolution, an
    upsampler). The output of an ``(H, W)`` input has size
    ``(round(r_h * H), round(r_w * W))``; ``r`` is learned end to end through
    a straight-through estimate, and ``r > 1`` upsamples. The layer learns
    ``alpha = (1/r_h, 1/r_w)`` (gradients of the sampling positions blow up
    like ``1/r`` otherwise); give ``alpha`` no weight decay.

    The computation runs on the backend that ``MMDYNOPOOL_BACKEND`` names
    (``auto``, the default, ``torch``, or the fused kernels ``cpu`` and
    ``triton``; see :func:`~mmdynopool.ops.functional.resolve_backend`);
    every backend gives the same outputs and gradients, within rounding.

    Args:
        init_ratio (float | tuple[float, float]): Initial ``r`` or
            ``(r_h, r_w)``: 0.5 for a replaced stride-2 step, 2.0 for a x2
            upsampler. Default: 0.5.
        aggregation (str): How the four query points of a cell are combined:
            ``'max'`` (the paper) or ``'avg'``. Default: ``'max'``.
        ratio_range (tuple[float, float]): Bounds ``(r_min, r_max)`` enforced
            on ``alpha`` at every forward. Default: ``(1/16, 4)``.
        min_size (int): Lower bound of each output side. Default: 1.
    """

    def __init__(self,
                 init_ratio: Ratio = 0.5,
                 aggregation: str = 'max',
                 ratio_range: Sequence[float] = DEFAULT_RATIO_RANGE,
                 min_size: int = 1) -> None:
        super().__init__()
        r_h, r_w = pair_of_ratios(init_ratio, 'init_ratio')
        self.aggregation = check_aggregation(aggregation)
        self.ratio_range = check_ratio_range(ratio_range)
        self.min_size = check_min_size(min_size)
        r_min, r_max = self.ratio_range
        for name, value in (('init_ratio (r_h)', r_h), ('init_ratio (r_w)',
                                                        r_w)):
            if not r_min <= value <= r_max:
                raise ValueError(f'{name}={value} lies outside ratio_range '
                                 f'{self.ratio_range}; widen ratio_range')
        self.alpha = nn.Parameter(torch.tensor([1.0 / r_h, 1.0 / r_w]))
        # alpha's host values at the last forward (set there)
        self.forward_alpha: Optional[Tuple[float, float]] = None

    @property
    def alpha_bounds(self) -> Tuple[float, float]:
        """``(alpha_min, alpha_max) = (1/r_max, 1/r_min)``."""
        return 1.0 / self.ratio_range[1], 1.0 / self.ratio_range[0]

    @property
    def ratio(self) -> Tuple[float, float]:
        """The current scale factors ``(r_h, r_w)`` (within ``ratio_range``)."""
        low, high = self.alpha_bounds
        alpha_h, alpha_w = check_alpha(self.alpha)
        return (1.0 / min(max(alpha_h, low), high),
                1.0 / min(max(alpha_w, low), high))

    def output_size(self, h: int, w: int) -> Tuple[int, int]:
        """Integer output size for an ``(h, w)`` input at the current ratio."""
        r_h, r_w = self.ratio
        out_h, out_w, _, _ = alpha_to_sizes((1.0 / r_h, 1.0 / r_w), h, w,
                                            self.min_size)
        return out_h, out_w

    def project_alpha(self) -> Tuple[float, float]:
        """Clamp ``alpha`` in place into the bounds given by ``ratio_range``;
        returns its (projected) values, read from the device once.

        Projection (rather than clamping inside the graph) keeps the gradient
        alive at the bounds, so a ratio can leave a bound again. ``alpha`` is
        only written when it is out of bounds, so that a layer applied twice
        in one graph does not invalidate the first application's gradient.
        """
        low, high = self.alpha_bounds
        values = check_alpha(self.alpha)
        if any(not low <= value <= high for value in values):
            with torch.no_grad():
                self.alpha.clamp_(low, high)
            values = check_alpha(self.alpha)
        return values

    def forward(self, x: Tensor) -> Tensor:
        alpha_values = self.project_alpha()
        # What this forward used, for its hooks (the GMACs recorder): they
        # need not read a GPU alpha again.
        self.forward_alpha = alpha_values
        return dynopool2d(x, self.alpha, self.aggregation, self.min_size,
                          alpha_values)

    def to_static(self) -> nn.Module:
        """The deploy form: a parameter-free module with the learned ratio
        fixed, computing the same output with ``F.interpolate`` and
        ``max_pool2d`` (see :class:`StaticDynOPool`)."""
        from .static import StaticDynOPool
        return StaticDynOPool(self.ratio, self.aggregation, self.min_size)

    def extra_repr(self) -> str:
        r_h, r_w = self.ratio
        return (f'ratio=({r_h:.4f}, {r_w:.4f}), aggregation='
                f'{self.aggregation!r}, ratio_range={self.ratio_range}, '
                f'min_size={self.min_size}')


def dynopool_layers(model: nn.Module) -> 'list[tuple[str, DynOPool]]':
    """All ``(name, DynOPool)`` pairs of ``model`` in registration order."""
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, DynOPool)]
