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

The four query points of every cell form a regular ``2*H_out x 2*W_out``
grid, so the forward is exactly ``max_pool2d(interpolate(x, 2*size), 2)``.
:class:`DynOPoolFunction` runs that forward with PyTorch's fast kernels and
writes its own backward: the input gradient reuses the built-in backward
kernels, ``alpha``'s gradient is reduced per query row / column.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
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


def position_sensitivity(in_size: int, out_size: int, alpha: float,
                         device=None) -> Tuple[Tensor, Tensor, Tensor]:
    """Per query row (or column) of one axis: where it reads the input and
    how its position moves with ``alpha``.

    Returns:
        tuple: ``lower`` (int64 index of the lower neighbour, clamped to a
        valid difference row), ``slope`` (float64: d position / d alpha,
        zero where the point is clamped to the border so the sample does not
        move) and the unclamped positions.
    """
    positions = query_positions(in_size, out_size, device=device)
    lower = positions.floor()
    # Outside the outermost pixel centres the value is the border value:
    # moving the point does not change the sample.
    moves = (positions >= 0) & (lower < in_size - 1)
    # s_k = (k + 0.5) * in / (2 * H_hat) - 0.5, H_hat = in / alpha
    # => d s_k / d alpha = (s_k + 0.5) * in / (H_out * alpha**2).
    slope = (positions + 0.5) * in_size / (out_size * alpha * alpha)
    slope = torch.where(moves, slope, torch.zeros_like(slope))
    lower = lower.clamp(0, max(in_size - 2, 0)).long()
    return lower, slope, positions


def axis_gradient(x: Tensor, query_grad: Tensor, dim: int, in_size: int,
                  out_size: int, alpha: float) -> Tensor:
    """``d loss / d alpha`` along one axis (``dim`` 2 for H, 3 for W).

    ``query_grad`` is the loss gradient w.r.t. the ``2H_out x 2W_out`` query
    grid. The derivative of a bilinear sample along ``dim`` is the other
    axis' interpolation of the neighbour difference ``x[i+1] - x[i]``: it is
    built at query resolution, multiplied by ``query_grad``, reduced to one
    number per query row (column) and weighted by how far that row moves.
    """
    accumulate = torch.promote_types(x.dtype, torch.float32)
    if in_size < 2:
        return query_grad.new_zeros((), dtype=accumulate)
    lower, slope, _ = position_sensitivity(in_size, out_size, alpha,
                                           device=x.device)
    neighbour_diff = torch.diff(x, dim=dim).index_select(dim, lower)
    # Interpolate along the other axis only (identity along ``dim``).
    size = list(query_grad.shape[2:])
    derivative = F.interpolate(
        neighbour_diff, size=size, mode='bilinear', align_corners=False)
    other_dims = (0, 1, 5 - dim)
    per_row = (query_grad * derivative).sum(dim=other_dims, dtype=accumulate)
    return (per_row * slope.to(accumulate)).sum()


def scatter_to_queries(grad_out: Tensor, indices: Optional[Tensor],
                       query_size: Sequence[int]) -> Tensor:
    """Gradient of the 2x2 aggregation: from output cells to query points."""
    if indices is not None:  # max: to the selected query point of each cell
        return F.max_unpool2d(
            grad_out.contiguous(), indices, 2, output_size=query_size)
    # avg: a quarter to each of the four query points
    return F.interpolate(grad_out * 0.25, size=query_size, mode='nearest')


class DynOPoolFunction(torch.autograd.Function):
    """``max_pool2d(interpolate(x, 2*size), 2)`` with gradients for ``x`` and,
    through the straight-through sampling positions, for ``alpha``."""

    @staticmethod
    def forward(ctx, x: Tensor, alpha: Tensor, out_h: int, out_w: int,
                aggregation: str, pinned_h: bool, pinned_w: bool) -> Tensor:
        query_size = (2 * out_h, 2 * out_w)
        queries = F.interpolate(
            x, size=query_size, mode='bilinear', align_corners=False)
        if aggregation == 'max':
            out, indices = F.max_pool2d(queries, 2, return_indices=True)
        else:
            out, indices = F.avg_pool2d(queries, 2), None
        ctx.save_for_backward(x, alpha, indices)
        ctx.query_size = query_size
        ctx.pinned = (pinned_h, pinned_w)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, alpha, indices = ctx.saved_tensors
        query_grad = scatter_to_queries(
            grad_out.to(x.dtype), indices, ctx.query_size)
        grad_x = grad_alpha = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.upsample_bilinear2d_backward(
                query_grad, list(ctx.query_size), list(x.shape), False)
        if ctx.needs_input_grad[1]:
            alpha_h, alpha_w = alpha.detach().double().tolist()
            out_h, out_w = ctx.query_size[0] // 2, ctx.query_size[1] // 2
            grads = []
            for dim, alpha_axis, out_size, pinned in (
                    (2, alpha_h, out_h, ctx.pinned[0]),
                    (3, alpha_w, out_w, ctx.pinned[1])):
                if pinned:
                    grads.append(alpha.new_zeros(()))
                else:
                    grads.append(
                        axis_gradient(x, query_grad, dim, x.shape[dim],
                                      out_size, alpha_axis))
            grad_alpha = torch.stack([g.to(alpha.dtype) for g in grads])
        return grad_x, grad_alpha, None, None, None, None, None


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
               min_size: int = 1) -> Tensor:
    """DynOPool forward for a given ``alpha = (1/r_h, 1/r_w)``.

    Args:
        x (Tensor): (N, C, H, W) floating point input.
        alpha (Tensor): shape (2,), inverse scale factors.
        aggregation (str): ``'max'`` (the paper) or ``'avg'``.
        min_size (int): lower bound of each output side.

    Returns:
        Tensor: (N, C, round(H/alpha_h), round(W/alpha_w)).
    """
    check_feature_map(x)
    check_aggregation(aggregation)
    alpha_values = check_alpha(alpha)
    # int(): under tracing shapes are tensors, and float32 arithmetic on them
    # could round a size differently from eager mode.
    out_h, out_w, pinned_h, pinned_w = alpha_to_sizes(
        alpha_values, int(x.shape[2]), int(x.shape[3]), min_size)
    return DynOPoolFunction.apply(x, alpha, out_h, out_w, aggregation,
                                  pinned_h, pinned_w)


def dynopool2d_reference(x: Tensor,
                         alpha: Tensor,
                         aggregation: str = 'max',
                         min_size: int = 1) -> Tensor:
    """The naive route, written straight from the spec: build the query grid
    from the straight-through sizes and ``grid_sample`` it (border padding),
    then aggregate each cell's four samples. Autograd does the rest.

    Slow and memory-hungry; used as a test oracle and as the benchmark's
    baseline.
    """
    check_feature_map(x)
    check_aggregation(aggregation)
    alpha_values = check_alpha(alpha)
    n, in_h, in_w = x.shape[0], int(x.shape[2]), int(x.shape[3])
    out_h, out_w, pinned_h, pinned_w = alpha_to_sizes(alpha_values, in_h,
                                                      in_w, min_size)
    hat_h = straight_through_size(alpha[0], in_h, out_h, pinned_h)
    hat_w = straight_through_size(alpha[1], in_w, out_w, pinned_w)

    def axis_queries(hat: Tensor, out_size: int) -> Tensor:
        # Cell centres -1 + (2i+1)/H_hat, +- a quarter cell 1/(2 H_hat).
        k = torch.arange(2 * out_size, device=x.device, dtype=x.dtype)
        return -1 + (2 * k + 1) / (2 * hat.to(x.dtype))

    rows = axis_queries(hat_h, out_h)
    cols = axis_queries(hat_w, out_w)
    grid = torch.stack(torch.meshgrid(cols, rows, indexing='xy'), dim=-1)
    grid = grid.unsqueeze(0).expand(n, -1, -1, -1)
    queries = F.grid_sample(
        x, grid, mode='bilinear', padding_mode='border', align_corners=False)
    if aggregation == 'max':
        return F.max_pool2d(queries, 2)
    return F.avg_pool2d(queries, 2)
