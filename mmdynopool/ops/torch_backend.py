"""The PyTorch backend of DynOPool: PyTorch's own kernels, any device.

The four query points of every cell form a regular ``2*H_out x 2*W_out``
grid, so the forward is exactly ``max_pool2d(interpolate(x, 2*size), 2)``.
:class:`DynOPoolFunction` runs that forward with PyTorch's kernels (the
resize in the input's own layout, so that the output is bitwise the deploy
form's) and writes its own backward: the input gradient reuses the built-in
backward kernels, ``alpha``'s gradient pairs the query gradient with
neighbour differences of the input, per query row / column. On the CPU the
pooling and the backward run channels-last, a chunk of the batch at a time
(see :func:`work_layout`, :func:`batch_chunks`).

It fulfils the backend contract of :mod:`mmdynopool.ops.functional`.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .functional import hits_pixel_centres, position_sensitivity


def resample(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resize to ``size`` (``align_corners=False``, border values);
    ``x`` itself where the size is unchanged, which is exact: every sample
    then sits on a pixel centre."""
    if tuple(size) == tuple(x.shape[2:]):
        return x
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


def resample_backward(grad: Tensor,
                      in_size: Sequence[int],
                      out: Optional[Tensor] = None) -> Tensor:
    """Backward of :func:`resample` from ``grad.shape[2:]`` to ``in_size``
    (into ``out`` if given); where one axis keeps its size, a backward along
    the other axis only."""
    if tuple(in_size) == tuple(grad.shape[2:]):
        return grad
    args = (grad, list(grad.shape[2:]), [*grad.shape[:2], *in_size], False)
    if out is None:
        return torch.ops.aten.upsample_bilinear2d_backward(*args)
    return torch.ops.aten.upsample_bilinear2d_backward.grad_input(
        *args, grad_input=out)


def memory_format_of(x: Tensor) -> torch.memory_format:
    """``x``'s layout: channels-last or (taken for anything else)
    contiguous."""
    if not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def work_layout(x: Tensor) -> torch.memory_format:
    """The layout :class:`DynOPoolFunction` pools in, and differentiates in
    where something is resized.

    Channels-last on the CPU (unless there are only a few channels):
    PyTorch's CPU kernels for 2x2 pooling, bilinear resizing and its
    backward are vectorised over channels in this layout only (several times
    faster than NCHW), and gathering rows or columns then copies runs of
    ``C`` values. Elsewhere ``x``'s own layout, which saves conversions."""
    if x.device.type == 'cpu' and x.shape[1] >= 8:
        return torch.channels_last
    return memory_format_of(x)


def copy_relayout_(dst: Tensor, src: Tensor) -> Tensor:
    """``dst.copy_(src)``; between NCHW and NHWC on the CPU as one 2-D
    transposing copy per sample, for which PyTorch has a cache-blocked
    kernel about twice as fast as its generic strided copy (measured to pay
    for the loop from 32 channels and 2**17 values per sample)."""
    if (src.device.type != 'cpu' or src.stride() == dst.stride()
            or src.shape[1] < 32 or src[0].numel() < 1 << 17):
        return dst.copy_(src)
    for target, source in zip(dst, src):
        channels = source.shape[0]
        target_hwc = target.permute(1, 2, 0)
        source_hwc = source.permute(1, 2, 0)
        if source.is_contiguous() and target_hwc.is_contiguous():
            target_hwc.view(-1, channels).copy_(source.view(channels, -1).t())
        elif target.is_contiguous() and source_hwc.is_contiguous():
            target.view(channels, -1).copy_(
                source_hwc.reshape(-1, channels).t())
        else:
            target.copy_(source)
    return dst


def to_layout(x: Tensor, layout: torch.memory_format) -> Tensor:
    """``x`` in ``layout`` (a copy unless it already is)."""
    if x.is_contiguous(memory_format=layout):
        return x
    return copy_relayout_(torch.empty_like(x, memory_format=layout), x)


def merge_chunk(whole: Optional[Tensor], part: slice, piece: Tensor,
                batch: int, layout: torch.memory_format) -> Tensor:
    """Write one chunk's result into the batch's result, allocated in
    ``layout`` at the first chunk; a single chunk already in ``layout`` is
    the result itself."""
    if whole is None:
        if piece.shape[0] == batch and piece.is_contiguous(
                memory_format=layout):
            return piece
        whole = torch.empty((batch, *piece.shape[1:]),
                            dtype=piece.dtype,
                            device=piece.device,
                            memory_format=layout)
    copy_relayout_(whole[part], piece)
    return whole


def in_memory_order(x: Tensor) -> Tuple[int, ...]:
    """The permutation that lists ``x``'s dims outermost first in memory:
    NCHW, or NHWC for a channels-last tensor."""
    if memory_format_of(x) == torch.channels_last:
        return (0, 2, 3, 1)
    return (0, 1, 2, 3)


def sum_of_products(a: Tensor, b: Tensor) -> Tensor:
    """``(a * b).sum()``, accumulated in at least float32; one BLAS pass
    when ``a`` and ``b`` are contiguous."""
    if a.dtype in (torch.float32, torch.float64):
        return torch.dot(a.reshape(-1), b.reshape(-1))
    return (a * b).sum(dtype=torch.float32)


def axis_gradient(x: Tensor, grad: Tensor, dim: int, lower: Tensor,
                  slopes: Tuple[Tensor, Optional[Tensor]]) -> Tensor:
    """``d loss / d alpha`` along one axis (``dim`` 2 for H, 3 for W).

    ``grad`` is the loss gradient w.r.t. samples at the query positions
    along ``dim`` (``lower``, ``slopes``: see :func:`learned_axes`);
    along the other axis it is at query resolution or, after the resize's
    backward along that axis only, at input resolution (cheaper: nothing to
    resize). ``x`` is resized along the other axis to match. A sample's
    derivative along ``dim`` is then a weighted sum of the differences of
    the input rows (columns) around it: gathered per query row, weighted by
    how far the row moves with ``alpha`` and contracted with ``grad``. The
    work runs in ``x``'s memory order, where a gathered row or column is a
    contiguous run.
    """
    in_size = x.shape[dim]
    if in_size < 2:
        return grad.new_zeros((), dtype=torch.float32)
    size = list(grad.shape[2:])
    size[dim - 2] = in_size
    order = in_memory_order(x)
    axis = order.index(dim)
    resized = resample(x, size).permute(order)
    shape = [-1] + [1] * (3 - axis)
    above, below = (None if s is None else s.view(shape) for s in slopes)
    if grad.shape[dim] == in_size:
        # Query rows are the input rows (r = 0.5, all on pixel centres):
        # row i takes half the differences above and below it, i.e.
        # (x[i+1] - x[i-1]) * slope_i / 2 inside, and at the two border rows
        # the one difference there is, at the same weight.
        n = in_size
        derivative = torch.empty_like(resized)
        if n > 2:
            torch.sub(resized.narrow(axis, 2, n - 2),
                      resized.narrow(axis, 0, n - 2),
                      out=derivative.narrow(axis, 1, n - 2))
        for row in (0, n - 1):
            torch.sub(resized.narrow(axis, min(row + 1, n - 1), 1),
                      resized.narrow(axis, max(row - 1, 0), 1),
                      out=derivative.narrow(axis, row, 1))
        derivative.mul_(torch.where(above != 0, above, below))
    else:
        difference = torch.diff(resized, dim=axis)
        derivative = difference.index_select(axis, lower).mul_(above)
        if below is not None:  # some query points sit on pixel centres
            derivative.addcmul_(
                difference.index_select(axis, (lower - 1).clamp_(min=0)),
                below)
    return sum_of_products(derivative, grad.permute(order))


def scatter_to_queries(grad_out: Tensor,
                       indices: Optional[Tensor],
                       query_size: Sequence[int],
                       out: Optional[Tensor] = None) -> Tensor:
    """Gradient of the 2x2 aggregation, from output cells to query points
    (into ``out`` if given): for max to the selected query point of each
    cell, for avg a quarter to each of the four."""
    if indices is not None:
        op, args = torch.ops.aten.max_unpool2d, (grad_out, indices)
    else:
        op, args = torch.ops.aten.upsample_nearest2d, (grad_out * 0.25, )
    args = (*args, list(query_size))
    return op(*args) if out is None else op.out(*args, out=out)


CHUNK_BYTES = 24 << 20


def batch_chunks(x: Tensor, query_size: Sequence[int]) -> List[slice]:
    """Equal slices of the batch that the CPU processes one after the other.

    Each chunk's temporaries (query grid, resized maps) stay below
    ``CHUNK_BYTES``, which keeps them under glibc's largest mmap threshold
    (32 MiB): the allocator recycles them instead of mapping fresh pages
    (their page faults cost more than the arithmetic), and they stay in
    cache. Other devices take the whole batch at once."""
    n = x.shape[0]
    if x.device.type != 'cpu':
        return [slice(0, n)]
    plane = max(x.shape[2] * x.shape[3], query_size[0] * query_size[1])
    sample_bytes = x.shape[1] * plane * x.element_size()
    chunks = min(n, -(-n * sample_bytes // CHUNK_BYTES))
    step = -(-n // chunks)
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def backward_chunk(grad_out: Tensor, indices: Optional[Tensor],
                   in_size: Sequence[int], want_input: bool,
                   out: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    """One chunk's gradients w.r.t. the query grid, w.r.t. query rows x
    input columns (the resize's backward along W only) and, if wanted,
    w.r.t. the input (the backward along H of the latter). The last of
    these steps that does anything writes into ``out`` if given."""
    query_size = [2 * s for s in grad_out.shape[2:]]
    last = 'h' if query_size[0] != in_size[0] else (
        'w' if query_size[1] != in_size[1] else 'scatter')
    query_grad = scatter_to_queries(grad_out, indices, query_size,
                                    out if last == 'scatter' else None)
    row_grad = resample_backward(query_grad, (query_size[0], in_size[1]),
                                 out if last == 'w' else None)
    input_grad = None
    if want_input:
        input_grad = resample_backward(row_grad, in_size,
                                       out if last == 'h' else None)
    return query_grad, row_grad, input_grad


def learned_axes(x: Tensor, alpha_values: Sequence[float],
                 out_size: Sequence[int], learn: Sequence[bool]
                 ) -> List[Tuple[int, Tensor, Tuple[Tensor, Optional[Tensor]]]]:
    """``(dim, lower, slopes)`` of the axes whose ``alpha`` gets a gradient
    (see :func:`position_sensitivity`), on ``x``'s device, the slopes in its
    dtype; ``slopes[1]`` is None where no query point sits on a pixel
    centre. ``alpha_values`` are the host values the forward used, so that
    the backward reads nothing back from the device (no synchronisation)."""
    axes = []
    for dim, alpha_axis, learn_axis in zip((2, 3), alpha_values, learn):
        if learn_axis:
            in_size, n = x.shape[dim], out_size[dim - 2]
            lower, (above, below), _ = position_sensitivity(
                in_size, n, alpha_axis, x.device)
            below = below.to(x.dtype) if hits_pixel_centres(in_size,
                                                            n) else None
            axes.append((dim, lower, (above.to(x.dtype), below)))
    return axes


class DynOPoolFunction(torch.autograd.Function):
    """``max_pool2d(interpolate(x, 2*size), 2)`` with gradients for ``x`` and,
    through the straight-through sampling positions, for ``alpha``.

    The resize runs in ``x``'s layout, so that the output is bitwise the
    deploy form's (:class:`StaticDynOPool`); the pooling and the backward run
    in :func:`work_layout` (the backward in ``x``'s layout where nothing is
    resized), a chunk of the batch at a time (see :func:`batch_chunks`). The
    input gradient is the resize's backward done one axis at a time, W
    first: its intermediate (query rows x input columns) is also what
    ``alpha_h``'s gradient needs (see :func:`axis_gradient`).
    """

    @staticmethod
    def forward(ctx, x: Tensor, alpha: Tensor, alpha_values: Tuple[float,
                                                                   float],
                out_h: int, out_w: int, aggregation: str, pinned_h: bool,
                pinned_w: bool) -> Tensor:
        query_size = (2 * out_h, 2 * out_w)
        batch, layout = x.shape[0], work_layout(x)
        ctx.layout = memory_format_of(x)
        # Without a resize the query gradient is the input gradient: the
        # backward then runs in x's layout and writes it directly.
        if query_size == tuple(x.shape[2:]):
            ctx.backward_layout = ctx.layout
        else:
            ctx.backward_layout = layout
        out = indices = None
        for part in batch_chunks(x, query_size):
            queries = to_layout(resample(x[part], query_size), layout)
            if aggregation == 'max':
                pooled, selected = F.max_pool2d(
                    queries, 2, return_indices=True)
                indices = merge_chunk(indices, part, selected, batch,
                                      ctx.backward_layout)
            else:
                pooled = F.avg_pool2d(queries, 2)
            out = merge_chunk(out, part, pooled, batch, ctx.layout)
        ctx.save_for_backward(x, alpha, indices)
        ctx.pinned = (pinned_h, pinned_w)
        ctx.alpha_values = tuple(alpha_values)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, alpha, indices = ctx.saved_tensors
        layout = ctx.backward_layout
        learn = [ctx.needs_input_grad[1] and not p for p in ctx.pinned]
        axes = learned_axes(x, ctx.alpha_values, grad_out.shape[2:], learn)
        totals = x.new_zeros(
            2, dtype=torch.promote_types(x.dtype, torch.float32))
        grad_x = torch.empty_like(
            x, memory_format=ctx.layout) if ctx.needs_input_grad[0] else None
        for part in batch_chunks(x, [2 * s for s in grad_out.shape[2:]]):
            # In the input gradient's layout, straight into it.
            target = grad_x[part] if grad_x is not None and \
                layout == ctx.layout else None
            query_grad, row_grad, input_grad = backward_chunk(
                to_layout(grad_out[part].to(x.dtype), layout),
                None if indices is None else indices[part], x.shape[2:],
                grad_x is not None, target)
            if grad_x is not None and target is None:
                copy_relayout_(grad_x[part], input_grad)
            if axes:
                x_part = to_layout(x[part], layout)
            for dim, lower, slopes in axes:
                totals[dim - 2] += axis_gradient(
                    x_part, row_grad if dim == 2 else query_grad, dim, lower,
                    slopes)
        grad_alpha = totals.to(
            alpha.dtype) if ctx.needs_input_grad[1] else None
        return grad_x, grad_alpha, None, None, None, None, None, None
