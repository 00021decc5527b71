"""The PyTorch backend of DynOPool: PyTorch's own kernels, any device.

Two routes, both fulfilling the backend contract of
:mod:`mmdynopool.ops.functional`, and both bitwise the deploy form
``max_pool2d(interpolate(x, 2*size), 2)`` in the forward:

* **No resize** (the query grid is the input grid: ``r = 0.5`` on even
  sizes): every query point is a pixel, so the forward is
  ``max_pool2d(x, 2)`` (or avg) and ``alpha``'s gradient a central
  difference of the input (see :func:`pool_only_forward`).
* **Separable** (every other ratio, see :func:`separable_forward`): per
  chunk of planes small enough to stay in cache (see :func:`plane_chunks`),
  the query grid by PyTorch's resize, then its 2x2 max in two steps over
  contiguous pairs of rows and columns, with a uint8 code of the winner
  instead of int64 indices. The backward (see :func:`separable_backward`)
  rebuilds the query grid's gradient from the code and runs the resize's
  backward one axis at a time; ``alpha``'s gradient contracts each axis'
  intermediate with the input's differences along it. All of it runs in
  ``x``'s own layout, NCHW as ``(N*C, H, W)`` planes, channels-last as
  ``(N, H, W, C)``: converting between layouts on the CPU costs more than
  the whole operator (30 ms for 8x64x128x128 fp32, one thread). On the CPU
  the NCHW backward does its W-axis steps on transposed planes, as
  PyTorch's kernels run several times faster along H there.

Measured (8x64x128x128 fp32, forward + backward with alpha's gradient, one
thread, CPU clock, load average 3.5 on 2 cores) against the previous route,
which converted the query grid to channels-last and pooled it there: 0.66x
its time at r = 0.45, 0.55x at 0.55, 0.75x at (0.4, 0.7), 0.47x at 1.
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .functional import (hits_pixel_centres, memory_format_of,
                         position_sensitivity)


def sum_of_products(a: Tensor, b: Tensor) -> Tensor:
    """``(a * b).sum()``, accumulated in at least float32; one BLAS pass
    when ``a`` and ``b`` are contiguous."""
    if a.dtype in (torch.float32, torch.float64):
        return torch.dot(a.reshape(-1), b.reshape(-1))
    return (a * b).sum(dtype=torch.float32)


CHUNK_BYTES = 24 << 20
# The separable route's chunks, per thread: many passes over each chunk's
# temporaries, which therefore should stay in the L2 caches of the cores
# that share each kernel (measured on one thread: best at 1 MiB of 256 KiB
# to 24 MiB, 8x64x128x128 fp32, 1 MiB L2 per core).
CACHE_CHUNK_BYTES = 1 << 20


def chunks(length: int, unit_bytes: int, device: torch.device,
           multiple: int = 1, budget: Optional[int] = None) -> List[slice]:
    """Equal slices of ``range(length)`` (the batch, or the planes) that the
    CPU processes one after the other, ``unit_bytes`` of temporaries each.

    Each chunk's temporaries stay below ``budget`` (default
    ``CHUNK_BYTES``), which keeps them under glibc's largest mmap threshold
    (32 MiB): the allocator recycles them instead of mapping fresh pages
    (their page faults cost more than the arithmetic: a fresh 32 MiB buffer
    takes 15 ms to fault in, a recycled one 2 ms to fill), and they stay in
    cache. Chunks start at multiples of ``multiple``. Other devices take
    everything at once."""
    if device.type != 'cpu':
        return [slice(0, length)]
    budget = CHUNK_BYTES if budget is None else budget
    count = min(length, -(-length * unit_bytes // budget))
    step = -(-length // max(count, 1))
    step = -(-step // multiple) * multiple
    return [slice(i, min(i + step, length)) for i in range(0, length, step)]


# --------------------------------------------------------------------------
# No resize: r = 0.5 on even sizes, every query point a pixel centre.
# --------------------------------------------------------------------------


def work_layout(x: Tensor) -> torch.memory_format:
    """The layout the no-resize route pools in.

    Channels-last on the CPU (unless there are only a few channels):
    PyTorch's CPU kernel for 2x2 max-pooling is vectorised over channels in
    this layout only; converting an NCHW input there and pooling is faster
    than pooling NCHW (measured 33 ms against 47 ms, 8x64x128x128 fp32, one
    thread). Elsewhere ``x``'s own layout, which saves conversions."""
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


def central_difference_gradient(x: Tensor, grad: Tensor, dim: int,
                                slopes: Tuple[Tensor, Tensor]) -> Tensor:
    """``d loss / d alpha`` along one axis (``dim`` 2 for H, 3 for W) when
    the query rows are the input rows, all on pixel centres: row ``i`` takes
    half the differences above and below it, i.e.
    ``(x[i+1] - x[i-1]) * slope_i / 2`` inside, and at the two border rows
    the one difference there is, at the same weight (``slopes``: see
    :func:`position_sensitivity`). The work runs in ``x``'s memory order,
    where a row or column is a contiguous run."""
    n = x.shape[dim]
    if n < 2:
        return grad.new_zeros((), dtype=torch.float32)
    order = in_memory_order(x)
    axis = order.index(dim)
    x = x.permute(order)
    shape = [-1] + [1] * (3 - axis)
    above, below = (s.view(shape) for s in slopes)
    derivative = torch.empty_like(x)
    if n > 2:
        torch.sub(x.narrow(axis, 2, n - 2), x.narrow(axis, 0, n - 2),
                  out=derivative.narrow(axis, 1, n - 2))
    for row in (0, n - 1):
        torch.sub(x.narrow(axis, min(row + 1, n - 1), 1),
                  x.narrow(axis, max(row - 1, 0), 1),
                  out=derivative.narrow(axis, row, 1))
    derivative.mul_(torch.where(above != 0, above, below))
    return sum_of_products(derivative, grad.permute(order))


def pool_only_forward(ctx, x: Tensor, aggregation: str) -> Tensor:
    """2x2 pooling of ``x`` itself, in :func:`work_layout`, a chunk of the
    batch at a time; the output in ``x``'s layout, the max's indices in the
    layout the backward runs in (``x``'s own: it writes the input gradient
    directly)."""
    batch, layout = x.shape[0], work_layout(x)
    out = indices = None
    unit = x[0].numel() * x.element_size()
    for part in chunks(batch, unit, x.device):
        queries = to_layout(x[part], layout)
        if aggregation == 'max':
            pooled, selected = F.max_pool2d(queries, 2, return_indices=True)
            indices = merge_chunk(indices, part, selected, batch, ctx.layout)
        else:
            pooled = F.avg_pool2d(queries, 2)
        out = merge_chunk(out, part, pooled, batch, ctx.layout)
    ctx.save_for_backward(x, indices)
    return out


def pool_only_backward(ctx, grad_out: Tensor):
    """The pooling's backward (max: to the selected pixel of each cell;
    avg: a quarter to each) straight into the input gradient, and
    ``alpha``'s central differences."""
    x, indices = ctx.saved_tensors
    learn = [ctx.needs_input_grad[1] and not p for p in ctx.pinned]
    totals = x.new_zeros(2, dtype=torch.promote_types(x.dtype, torch.float32))
    grad_x = torch.empty_like(
        x, memory_format=ctx.layout) if ctx.needs_input_grad[0] else None
    slopes = {}
    for dim, alpha_axis, learn_axis in zip((2, 3), ctx.alpha_values, learn):
        if learn_axis:
            n = x.shape[dim]
            _, (above, below), _ = position_sensitivity(
                n, n // 2, alpha_axis, x.device)
            slopes[dim] = (above.to(x.dtype), below.to(x.dtype))
    unit = x[0].numel() * x.element_size()
    for part in chunks(x.shape[0], unit, x.device):
        grad = to_layout(grad_out[part].to(x.dtype), ctx.layout)
        target = None if grad_x is None else grad_x[part]
        if indices is not None:
            op, args = torch.ops.aten.max_unpool2d, (grad, indices[part])
        else:
            op, args = torch.ops.aten.upsample_nearest2d, (grad * 0.25, )
        args = (*args, list(x.shape[2:]))
        query_grad = op(*args) if target is None else op.out(*args,
                                                             out=target)
        for dim, axis_slopes in slopes.items():
            totals[dim - 2] += central_difference_gradient(
                x[part], query_grad, dim, axis_slopes)
    grad_alpha = totals.to(ctx.alpha_dtype) if ctx.needs_input_grad[1] \
        else None
    return grad_x, grad_alpha


# --------------------------------------------------------------------------
# Separable: every other ratio.
# --------------------------------------------------------------------------


def plane_view(x: Tensor, layout: torch.memory_format) -> Tensor:
    """``x`` as a tensor whose dims 1 and 2 are H and W, without a copy
    where ``x`` is in ``layout`` (that of the operator's input, see
    :func:`memory_format_of`; tensors where both layouts coincide take it
    too): ``(N*C, H, W)`` for NCHW, ``(N, H, W, C)`` for channels-last
    (anything else: an NCHW copy). Its chunks are slices of dim 0 (see
    :func:`plane_chunks`)."""
    if layout == torch.channels_last:
        return x.contiguous(memory_format=layout).permute(0, 2, 3, 1)
    return x.contiguous().view(-1, *x.shape[2:])


def as_image(planes: Tensor, channels: Optional[int]) -> Tensor:
    """A chunk of a :func:`plane_view` as a 4-D tensor for PyTorch's resize
    kernels: NCHW planes as images of ``channels`` channels (see
    :func:`plane_chunks`), channels-last as they are; back by
    :func:`as_planes`."""
    if planes.dim() == 4:
        return planes.permute(0, 3, 1, 2)
    return planes.view(-1, channels, *planes.shape[1:])


def as_planes(image: Tensor, channels: Optional[int]) -> Tensor:
    if channels is None:
        return image.permute(0, 2, 3, 1)
    return image.flatten(0, 1)


def from_plane_view(planes: Tensor, like: Tensor,
                    layout: torch.memory_format) -> Tensor:
    """The inverse of :func:`plane_view` for a result of ``planes``' spatial
    size: ``(N, C, h, w)`` like ``like``, in ``layout``."""
    if layout == torch.channels_last:
        return planes.permute(0, 3, 1, 2)
    return planes.view(*like.shape[:2], *planes.shape[1:3])


def resize(planes: Tensor, size: Sequence[int],
           channels: Optional[int]) -> Tensor:
    """Bilinear resize of a plane chunk (``align_corners=False``, border
    values), in its own layout."""
    return as_planes(
        F.interpolate(as_image(planes, channels), size=list(size),
                      mode='bilinear', align_corners=False), channels)


def max_with_code(queries: Tensor, out: Tensor) -> Tensor:
    """``out`` = the max of each 2x2 block of the query grid ``queries``
    (bitwise ``max_pool2d``) and a uint8 code of the winner: bit 0 the right
    column, bit 1 the bottom row. Two steps, each over contiguous pairs of
    rows (then columns), which runs several times faster than PyTorch's
    NCHW pooling kernel; ties go to the left column, then the top row."""
    pairs = queries.unflatten(1, (-1, 2))
    top, bottom = pairs[:, :, 0], pairs[:, :, 1]
    lower = torch.gt(bottom, top).unflatten(2, (-1, 2))
    # Left and right columns apart, each contiguous: PyTorch's maximum of
    # two stride-2 views runs 4x slower than this copy and a contiguous one.
    column_max = torch.maximum(top, bottom).unflatten(2, (-1, 2))
    left, right = column_max.movedim(3, 1).contiguous().unbind(1)
    right_wins = torch.gt(right, left)
    torch.maximum(left, right, out=out)
    lower_left, lower_right = lower[:, :, :, 0], lower[:, :, :, 1]
    # The winning column's bottom bit, without a (slow) where. (No
    # bool-to-uint8 views: torch.jit.trace, which FlopAnalyzer runs, cannot
    # record them.)
    bottom_wins = lower_left ^ (right_wins & (lower_left ^ lower_right))
    return right_wins.to(torch.uint8) | (bottom_wins.to(torch.uint8) << 1)


def query_gradient(grad: Tensor, code: Optional[Tensor],
                   transposed: bool = False) -> Tensor:
    """The gradient on the query grid: each cell's to its winning sample
    (max; float arithmetic on the code's bits, as PyTorch's CPU kernels
    multiply by a boolean mask several times slower than by a float one)
    or a quarter to each (avg). With ``transposed``, ``grad`` and ``code``
    are NCHW planes with H and W swapped, and so is the result."""
    shape = (grad.shape[0], grad.shape[1], 2, grad.shape[2], 2,
             *grad.shape[3:])
    if code is None:
        return (grad * 0.25).unsqueeze(2).unsqueeze(4).expand(
            shape).flatten(3, 4).flatten(1, 2)
    outer, inner = (code & 1, code >> 1) if transposed else (code >> 1,
                                                             code & 1)
    queries = grad.new_empty(shape)
    second = grad * inner.to(grad.dtype)  # the right (transposed: bottom)
    first = grad - second
    outer = outer.to(grad.dtype)
    for position, g in ((0, first), (1, second)):
        torch.mul(g, outer, out=queries[:, :, 1, :, position])
        torch.sub(g, queries[:, :, 1, :, position],
                  out=queries[:, :, 0, :, position])
    return queries.flatten(3, 4).flatten(1, 2)


def gather(v: Tensor, dim: int, index: Tensor) -> Tensor:
    """``v.index_select(dim, index)``; along the innermost dim (the columns
    of NCHW planes) as ``torch.gather``, which PyTorch's CPU kernels do 7x
    faster there."""
    if dim == v.dim() - 1:
        shape = (*v.shape[:-1], index.numel())
        return torch.gather(v, dim, index.expand(shape))
    return v.index_select(dim, index)


class Axis(NamedTuple):
    """How the query points along one axis move with ``alpha`` (see
    :func:`position_sensitivity`): the ``d position / d alpha`` weights
    ``above`` and ``below`` of the differences ``v[lower+1] - v[lower]`` and
    ``v[lower] - v[lower-1]`` (``below`` None where no point sits on a pixel
    centre)."""
    lower: Tensor
    above: Tensor
    below: Optional[Tensor]


def query_axis(in_size: int, out_size: int, alpha: float, device,
               dtype) -> Axis:
    lower, (above, below), _ = position_sensitivity(in_size, out_size,
                                                    alpha, device)
    below = below.to(dtype) if hits_pixel_centres(in_size, out_size) \
        else None
    return Axis(lower, above.to(dtype), below)


def broadcast(vector: Tensor, like: Tensor, dim: int) -> Tensor:
    """``vector`` shaped to scale ``like`` along ``dim``."""
    return vector.view([-1] + [1] * (like.dim() - 1 - dim))


def axis_gradient(v: Tensor, grad: Tensor, dim: int, axis: Axis) -> Tensor:
    """``d loss / d alpha`` along one axis (``dim`` 1 for H, 2 for W of a
    plane chunk): ``grad`` is the loss gradient w.r.t. samples at the query
    positions along ``dim`` and at ``v``'s positions along the other axis.
    A sample's derivative along ``dim`` is the difference of the input rows
    (columns) around it, gathered per query row, weighted by how far the
    row moves with ``alpha`` and contracted with ``grad``."""
    if v.shape[dim] < 2:
        return grad.new_zeros((), dtype=torch.float32)
    difference = torch.diff(v, dim=dim)
    derivative = gather(difference, dim, axis.lower)
    derivative.mul_(broadcast(axis.above, derivative, dim))
    if axis.below is not None:  # some query points sit on pixel centres
        derivative.addcmul_(
            gather(difference, dim, (axis.lower - 1).clamp_(min=0)),
            broadcast(axis.below, derivative, dim))
    return sum_of_products(derivative, grad)


def resize_backward(grad: Tensor, in_size: Sequence[int],
                    channels: Optional[int],
                    out: Optional[Tensor] = None) -> Tensor:
    """The backward of :func:`resize` from ``grad``'s size to ``in_size``,
    PyTorch's kernel (into ``out``, a plane chunk, if given). Along one
    axis only it runs fast where that axis is not the innermost one: along
    H in NCHW (vectorised over W) and either axis channels-last (over C)."""
    image = as_image(grad, channels)
    size = [image.shape[0], image.shape[1], *in_size]
    args = (image, list(image.shape[2:]), size, False)
    if out is None:
        return as_planes(torch.ops.aten.upsample_bilinear2d_backward(*args),
                         channels)
    torch.ops.aten.upsample_bilinear2d_backward.grad_input(
        *args, grad_input=as_image(out, channels))
    return out


def transposed(planes: Tensor) -> Tensor:
    """NCHW planes with H and W swapped, contiguous: along W, PyTorch's
    resize backward and row gathers run 5-10x slower than along H, more
    than the two copies cost."""
    return planes.transpose(1, 2).contiguous()


def plane_chunks(planes: Tensor, channels: int,
                 query_size: Sequence[int]) -> List[Tuple[slice,
                                                         Optional[int]]]:
    """Chunks of a plane view that fit ``CACHE_CHUNK_BYTES`` per thread of
    temporaries (the query grid and the resized rows), each with the
    channels its image has for PyTorch's kernels (None: channels-last).

    The forward must round as the deploy form does, and PyTorch's NCHW
    resize kernel vectorises across the channels of each image: a chunk of
    planes regrouped into other images rounds differently in the last bit.
    So NCHW chunks are whole samples or, where one sample is too big, groups
    of channels that start at multiples of the widest vector there is
    (64 bytes: AVX-512); channels-last chunks are whole samples."""
    rest = planes[0, 0, 0].numel()
    values = max(planes.shape[1] * planes.shape[2],
                 query_size[0] * max(query_size[1], planes.shape[2]))
    unit = values * rest * planes.element_size()
    budget = CACHE_CHUNK_BYTES * torch.get_num_threads()
    if planes.dim() == 4:
        return [(part, None)
                for part in chunks(planes.shape[0], unit, planes.device, 1,
                                   budget)]
    per_sample = channels * unit
    if per_sample <= budget or planes.device.type != 'cpu':
        return [(part, channels)
                for part in chunks(planes.shape[0] // channels, per_sample,
                                   planes.device, 1, budget)
                for part in [slice(part.start * channels,
                                   part.stop * channels)]]
    vector = max(64 // planes.element_size(), 1)
    result = []
    for group in chunks(channels, unit, planes.device, vector, budget):
        width = group.stop - group.start
        for sample in range(0, planes.shape[0], channels):
            result.append((slice(sample + group.start, sample + group.stop),
                           width))
    return result


def separable_forward(ctx, x: Tensor, out_size: Sequence[int],
                      aggregation: str) -> Tensor:
    """The query grid by PyTorch's resize in ``x``'s layout (so that the
    output is bitwise the deploy form's), then its 2x2 max (with a uint8
    code of the winner, for the backward) or mean; a chunk of planes at a
    time (see :func:`chunks`)."""
    planes = plane_view(x, ctx.layout)
    query_size = (2 * out_size[0], 2 * out_size[1])
    out = planes.new_empty((planes.shape[0], *out_size, *planes.shape[3:]))
    code = torch.empty_like(out, dtype=torch.uint8) \
        if aggregation == 'max' else None
    for part, channels in plane_chunks(planes, x.shape[1], query_size):
        queries = resize(planes[part], query_size, channels)
        if code is not None:
            code[part] = max_with_code(queries, out[part])
        else:
            out[part] = as_planes(
                F.avg_pool2d(as_image(queries, channels), 2), channels)
    ctx.save_for_backward(x, code)
    ctx.out_size = tuple(out_size)
    return from_plane_view(out, x, ctx.layout)


def separable_backward(ctx, grad_out: Tensor):
    """Gradients of the separable route, a chunk of planes at a time: the
    query grid's gradient (see :func:`query_gradient`), the resize's
    backward along W, then along H (which is also what ``alpha_h``'s
    gradient contracts with the input's row differences); ``alpha_w``'s
    gradient contracts the query grid's gradient with the column
    differences of the input resized along H."""
    x, code = ctx.saved_tensors
    learn_h, learn_w = (ctx.needs_input_grad[1] and not p for p in ctx.pinned)
    want_x = ctx.needs_input_grad[0]
    planes = plane_view(x, ctx.layout)
    rows, cols = (query_axis(x.shape[dim], ctx.out_size[dim - 2],
                             ctx.alpha_values[dim - 2], x.device, x.dtype)
                  for dim in (2, 3))
    query_size = (2 * ctx.out_size[0], 2 * ctx.out_size[1])
    grads = plane_view(grad_out.to(x.dtype), ctx.layout)
    totals = x.new_zeros(2, dtype=torch.promote_types(x.dtype, torch.float32))
    grad_planes = torch.empty_like(planes) if want_x else None
    # NCHW on the CPU: the W-axis steps run on planes with H and W swapped.
    swap = planes.dim() == 3 and x.device.type == 'cpu'
    in_h, in_w = x.shape[2:]
    for part, channels in plane_chunks(planes, x.shape[1], query_size):
        grad, chunk = grads[part], planes[part]
        part_code = None if code is None else code[part]
        if swap:
            # (Transposed views: the arithmetic writes contiguous results.)
            query_grad = query_gradient(
                grad.transpose(1, 2), None if code is None else
                part_code.transpose(1, 2), transposed=True)
            if learn_w:
                resized = resize(transposed(chunk), (in_w, query_size[0]),
                                 channels)
                totals[1] += axis_gradient(resized, query_grad, 1, cols)
        else:
            query_grad = query_gradient(grad, part_code)
            if learn_w:
                resized = resize(chunk, (query_size[0], in_w), channels)
                totals[1] += axis_gradient(resized, query_grad, 2, cols)
        if want_x or learn_h:
            # The resize's backward along W, then along H.
            if swap:
                row_grad = transposed(
                    resize_backward(query_grad, (in_w, query_size[0]),
                                    channels))
            else:
                row_grad = resize_backward(query_grad, (query_size[0], in_w),
                                           channels)
            if learn_h:
                totals[0] += axis_gradient(chunk, row_grad, 1, rows)
            if want_x:
                resize_backward(row_grad, (in_h, in_w), channels,
                                grad_planes[part])
    grad_x = from_plane_view(grad_planes, x, ctx.layout) if want_x \
        else None
    grad_alpha = totals.to(ctx.alpha_dtype) if ctx.needs_input_grad[1] \
        else None
    return grad_x, grad_alpha


class DynOPoolFunction(torch.autograd.Function):
    """DynOPool with gradients for ``x`` and, through the straight-through
    sampling positions, for ``alpha`` (the backend contract of
    :mod:`mmdynopool.ops.functional`): the no-resize route where the query
    grid is the input grid, the separable route elsewhere (see the module
    docstring)."""

    @staticmethod
    def forward(ctx, x: Tensor, alpha: Tensor, alpha_values: Tuple[float,
                                                                   float],
                out_h: int, out_w: int, aggregation: str, pinned_h: bool,
                pinned_w: bool) -> Tensor:
        ctx.layout = memory_format_of(x)
        ctx.pinned = (pinned_h, pinned_w)
        ctx.alpha_values = tuple(alpha_values)
        ctx.alpha_dtype = alpha.dtype
        ctx.pool_only = (2 * out_h, 2 * out_w) == tuple(x.shape[2:])
        if ctx.pool_only:
            return pool_only_forward(ctx, x, aggregation)
        return separable_forward(ctx, x, (out_h, out_w), aggregation)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        if ctx.pool_only:
            grad_x, grad_alpha = pool_only_backward(ctx, grad_out)
        else:
            grad_x, grad_alpha = separable_backward(ctx, grad_out)
        return grad_x, grad_alpha, None, None, None, None, None, None
