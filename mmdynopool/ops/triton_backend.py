"""The Triton backend of DynOPool: fused kernels, one output cell a lane.

The PyTorch backend builds the whole ``2*H_out x 2*W_out`` query grid
(interpolate, then pool) and walks full-size temporaries again in the
backward. These kernels compute each output cell straight from ``x``:

* forward: the cell's four bilinear samples at its quarter-cell centres,
  then their max (or mean). For max it also writes a compact code (int8,
  ``2 * row + column`` of the winning sample within the cell), not an int64
  index map over the query grid;
* backward, one pass for both gradients: the cell's gradient goes to the
  (at most) four bilinear neighbours of its selected sample (of all four
  samples for avg), by atomic adds into an fp32 (fp64 for fp64 inputs)
  buffer; ``alpha``'s gradient is the derivative of the selected sample
  along each axis, with the spec's central difference where it sits on a
  pixel centre (see :func:`~mmdynopool.ops.functional.position_sensitivity`),
  summed per program into partial sums that PyTorch adds up (a
  deterministic order, no float atomics for ``alpha``).

Query positions are exact integer ratios (``numerator / (4 * out_size)``,
see :func:`~mmdynopool.ops.functional.position_numerators`), so the pixel
centre test is exact as in the torch backend. Arithmetic runs in fp32 for
fp16 / bf16 / fp32 inputs (fp64 for fp64); samples are rounded to the
input's dtype before they are compared, as the torch backend's query grid
is, so both select the same sample. Inputs may be NCHW or channels-last:
a lane decodes its cell from the output's memory order (coalesced stores)
and reads ``x`` through its strides.

Runs on CUDA tensors, and on CPU tensors under Triton's interpreter
(``TRITON_INTERPRET=1`` set before the first call), which is how CI tests
it. Only APIs shared by triton 3.6 and 3.9 are used.
"""
import importlib.util
import os
from typing import Optional, Tuple

import torch
from torch import Tensor

from .functional import check_backend_dtype, dense, memory_format_of

try:
    import triton
    import triton.language as tl
except ImportError:  # the torch backend works without triton
    triton = tl = None

INSTALL_HINT = ('pip install triton (it comes with the CUDA builds of '
                'torch), or set MMDYNOPOOL_BACKEND=torch')
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Lanes per program: the cells one program handles.
BLOCK = 512
# int32 lane indices and position numerators (see check_can_run).
INT32_LIMIT = 2**31 - 1


def triton_available() -> bool:
    """Whether triton imports here."""
    return triton is not None


def interpreting() -> bool:
    """Whether Triton's interpreter runs the kernels (CPU tensors)."""
    return os.environ.get('TRITON_INTERPRET', '0') == '1'


def check_can_run(x: Tensor) -> None:
    """Raise an error that says what to change where the kernels cannot run
    ``x`` (``MMDYNOPOOL_BACKEND=triton`` never falls back silently)."""
    if triton is None:
        found = importlib.util.find_spec('triton') is not None
        raise RuntimeError(
            'MMDYNOPOOL_BACKEND=triton, but triton '
            f'{"fails to import" if found else "is not installed"}: '
            f'{INSTALL_HINT}')
    if x.device.type == 'cpu':
        if not interpreting():
            raise RuntimeError(
                'MMDYNOPOOL_BACKEND=triton runs CPU tensors only in Triton\'s '
                'interpreter: set TRITON_INTERPRET=1 before the first '
                'DynOPool call (slow; for tests), move the model to CUDA, or '
                'set MMDYNOPOOL_BACKEND=torch')
        if not _kernels_interpreted():
            raise RuntimeError(
                'TRITON_INTERPRET=1 was set after mmdynopool\'s Triton '
                'kernels were compiled for the GPU; set it before the first '
                'DynOPool call (e.g. in the environment of the process)')
    elif x.device.type != 'cuda':
        raise RuntimeError(
            f'MMDYNOPOOL_BACKEND=triton runs CUDA tensors, got a tensor on '
            f'{x.device}; set MMDYNOPOOL_BACKEND=torch for this device')
    check_backend_dtype(x, 'triton', DTYPES)


def check_sizes(x: Tensor, out_h: int, out_w: int) -> None:
    """Lane indices and position numerators are int32 in the kernels."""
    n, c, h, w = _ints(x.shape)
    if n * c * out_h * out_w > INT32_LIMIT or \
            (4 * out_h + 1) * h > INT32_LIMIT or \
            (4 * out_w + 1) * w > INT32_LIMIT:
        raise ValueError(
            f'x of shape {tuple(x.shape)} with output size ({out_h}, '
            f'{out_w}) is too large for the triton backend (int32 '
            'indexing); split the batch or set MMDYNOPOOL_BACKEND=torch')


if triton is not None:

    @triton.jit
    def _axis_sample(k, in_size, scale, ACC: tl.constexpr):
        """Where query ``k`` of an axis reads: rows ``i0``, ``i1`` and the
        weight ``f`` of ``i1``, with PyTorch's own arithmetic for
        ``interpolate(..., align_corners=False)`` (``scale = in / (2 *
        out)``, rounded to ``ACC`` as PyTorch does): the torch backend and
        the deploy form then sample alike. Border values: a position before
        the first pixel centre is clamped to it, past the last one both
        rows are the last."""
        # One rounding, like the fused multiply-add PyTorch's kernels get.
        src = tl.maximum(tl.fma(scale, k.to(ACC) + 0.5, -0.5), 0.0)
        i0 = tl.minimum(src.to(tl.int32), in_size - 1)
        i1 = tl.where(i0 < in_size - 1, i0 + 1, i0)
        return i0, i1, src - i0.to(ACC)

    @triton.jit
    def _axis_taps(k, in_size, out_size, scale, ACC: tl.constexpr):
        """The sample's derivative w.r.t. ``alpha`` along an axis as a
        3-tap stencil over rows ``q + 1``, ``q``, ``q - 1``: returns ``q``
        and the coefficients ``(c_up, c_mid, c_down)``.

        ``q`` and whether the point sits on a pixel centre come from its
        exact position numerator ``(2k + 1) * in - 2 * out`` over
        ``4 * out`` (see
        :func:`~mmdynopool.ops.functional.position_numerators`), as in the
        torch backend: never from the float position, which may fall just
        below a pixel centre. ``scale = in**2 / (4 * out**2 * alpha**2)``
        makes the slope ``d position / d alpha = (2k + 1) * scale``. Between
        pixel centres the derivative is the difference across the interval;
        on a centre the mean of the two one-sided ones (half of each
        difference that exists); where the position is clamped, zero.
        """
        raw = (2 * k + 1) * in_size - 2 * out_size
        num = tl.maximum(raw, 0)
        den = 4 * out_size
        q = num // den
        on_pixel = (num - q * den) == 0
        valid = raw >= 0
        slope = (2 * k + 1).to(ACC) * scale
        between = valid & (q < in_size - 1) & (~on_pixel)
        half = slope * 0.5
        above = tl.where(valid & on_pixel & (q <= in_size - 2), half, 0.0)
        below = tl.where(valid & on_pixel & (q >= 1) & (q <= in_size - 1),
                         half, 0.0)
        c_up = tl.where(between, slope, above)
        c_mid = tl.where(between, -slope, below - above)
        return tl.minimum(q, in_size - 1), c_up, c_mid, -below

    @triton.jit
    def _stencil(x_ptr, base, q, c_up, c_mid, c_down, o0, o1, fo, s_axis,
                 s_other, mask, ACC: tl.constexpr):
        """``sum_t c_t * x[t, o]`` over the rows ``t = q + 1, q, q - 1`` of
        the differentiated axis, each row interpolated along the other axis
        at the sample's position (``o0``, ``o1``, weight ``fo`` of ``o1``);
        only the rows and columns with a weight are read."""
        total = tl.zeros_like(fo)
        for t in tl.static_range(3):
            coefficient = c_up if t == 0 else (c_mid if t == 1 else c_down)
            row = q + 1 - t
            need = mask & (coefficient != 0.0)
            at = x_ptr + base + row * s_axis
            v0 = tl.load(at + o0 * s_other, mask=need, other=0.0).to(ACC)
            v1 = tl.load(at + o1 * s_other, mask=need & (fo != 0.0),
                         other=0.0).to(ACC)
            total += coefficient * ((1.0 - fo) * v0 + fo * v1)
        return total

    @triton.jit
    def _decode(offs, C, OH, OW, CHANNELS_LAST: tl.constexpr):
        """``(n, c, i, j)`` of the cells at linear positions ``offs`` of the
        output's memory order."""
        if CHANNELS_LAST:
            c = offs % C
            t = offs // C
            j = t % OW
            t = t // OW
            i = t % OH
            n = t // OH
        else:
            j = offs % OW
            t = offs // OW
            i = t % OH
            t = t // OH
            c = t % C
            n = t // C
        return n, c, i, j

    @triton.jit
    def _round_to_output(value, OUT_DTYPE: tl.constexpr,
                         IS_BF16: tl.constexpr):
        """``value`` rounded to the output dtype (to nearest, ties to even)
        and back. bf16 is rounded by hand: Triton's interpreter truncates
        fp32 -> bf16 conversions, the GPU rounds them; the integer trick is
        exact on both."""
        if IS_BF16:
            bits = value.to(tl.uint32, bitcast=True)
            bits = (bits + (0x7FFF + ((bits >> 16) & 1))) & 0xFFFF0000
            return tl.where(value != value, value,
                            bits.to(tl.float32, bitcast=True))
        return value.to(OUT_DTYPE).to(value.dtype)

    @triton.jit
    def _bilinear(x_ptr, base, r0, r1, fh, c0, c1, fw, sxh, sxw, mask,
                  ACC: tl.constexpr):
        """One bilinear sample (weights in PyTorch's order of operations);
        the second row / column is only read where its weight is not 0."""
        need_r1 = mask & (fh != 0.0)
        need_c1 = mask & (fw != 0.0)
        v00 = tl.load(x_ptr + base + r0 * sxh + c0 * sxw, mask=mask,
                      other=0.0).to(ACC)
        v01 = tl.load(x_ptr + base + r0 * sxh + c1 * sxw, mask=need_c1,
                      other=0.0).to(ACC)
        v10 = tl.load(x_ptr + base + r1 * sxh + c0 * sxw,
                      mask=need_r1, other=0.0).to(ACC)
        v11 = tl.load(x_ptr + base + r1 * sxh + c1 * sxw,
                      mask=need_r1 & need_c1, other=0.0).to(ACC)
        return (1.0 - fh) * ((1.0 - fw) * v00 + fw * v01) + \
            fh * ((1.0 - fw) * v10 + fw * v11)

    @triton.jit
    def _forward_kernel(x_ptr, out_ptr, code_ptr, params_ptr, sxn, sxc, sxh,
                        sxw, C, H, W, OH, OW, total, IS_MAX: tl.constexpr,
                        CHANNELS_LAST: tl.constexpr, ACC: tl.constexpr,
                        IS_BF16: tl.constexpr, BLOCK_SIZE: tl.constexpr):
        offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offs < total
        n, c, i, j = _decode(offs, C, OH, OW, CHANNELS_LAST)
        base = n.to(tl.int64) * sxn + c.to(tl.int64) * sxc
        out_dtype = out_ptr.dtype.element_ty
        scale_h = tl.load(params_ptr)
        scale_w = tl.load(params_ptr + 1)
        best = tl.zeros((BLOCK_SIZE, ), ACC)
        code = tl.zeros((BLOCK_SIZE, ), tl.int32)
        for a in tl.static_range(2):
            r0, r1, fh = _axis_sample(2 * i + a, H, scale_h, ACC)
            for b in tl.static_range(2):
                c0, c1, fw = _axis_sample(2 * j + b, W, scale_w, ACC)
                value = _bilinear(x_ptr, base, r0, r1, fh, c0, c1, fw, sxh,
                                  sxw, mask, ACC)
                # Rounded to x's dtype first, as the torch backend's query
                # grid is: both then compare the same values.
                value = _round_to_output(value, out_dtype, IS_BF16)
                if a * 2 + b == 0:
                    best = value
                elif IS_MAX:
                    # max_pool2d's rule: a larger value or a NaN wins.
                    take = (value > best) | (value != value)
                    best = tl.where(take, value, best)
                    code = tl.where(take, a * 2 + b, code)
                else:
                    best += value
        if IS_MAX:
            tl.store(code_ptr + offs, code.to(tl.int8), mask=mask)
        else:
            best = _round_to_output(best * 0.25, out_dtype, IS_BF16)
        # Exact: best is already a value of the output dtype.
        tl.store(out_ptr + offs, best.to(out_dtype), mask=mask)

    @triton.jit
    def _backward_sample(x_ptr, grad_x_ptr, params_ptr, base, k, l, g, H, W,
                         OH, OW, sxh, sxw, mask,
                         NEED_X: tl.constexpr, NEED_H: tl.constexpr,
                         NEED_W: tl.constexpr, ACC: tl.constexpr):
        """Gradient ``g`` of the sample at query row ``k``, column ``l``:
        added to its four bilinear neighbours in ``grad_x``; returns its
        contributions to ``alpha``'s gradient, ``g * d sample / d alpha``
        along H and along W."""
        r0, r1, fh = _axis_sample(k, H, tl.load(params_ptr), ACC)
        c0, c1, fw = _axis_sample(l, W, tl.load(params_ptr + 1), ACC)
        if NEED_X:
            for a in tl.static_range(2):
                row = r0 if a == 0 else r1
                wa = (1.0 - fh) if a == 0 else fh
                for b in tl.static_range(2):
                    col = c0 if b == 0 else c1
                    weight = wa * ((1.0 - fw) if b == 0 else fw)
                    tl.atomic_add(grad_x_ptr + base + row * sxh + col * sxw,
                                  g * weight, mask=mask & (weight != 0.0))
        d_h = tl.zeros_like(g)
        d_w = tl.zeros_like(g)
        if NEED_H:
            q, up, mid, down = _axis_taps(k, H, OH, tl.load(params_ptr + 2),
                                          ACC)
            d_h = g * _stencil(x_ptr, base, q, up, mid, down, c0, c1, fw, sxh,
                               sxw, mask, ACC)
        if NEED_W:
            q, up, mid, down = _axis_taps(l, W, OW, tl.load(params_ptr + 3),
                                          ACC)
            d_w = g * _stencil(x_ptr, base, q, up, mid, down, r0, r1, fh, sxw,
                               sxh, mask, ACC)
        return d_h, d_w

    @triton.jit
    def _backward_kernel(x_ptr, grad_out_ptr, code_ptr, grad_x_ptr,
                         partial_ptr, params_ptr, sxn, sxc, sxh, sxw, C, H, W,
                         OH, OW, total, IS_MAX: tl.constexpr,
                         CHANNELS_LAST: tl.constexpr, NEED_X: tl.constexpr,
                         NEED_H: tl.constexpr, NEED_W: tl.constexpr,
                         ACC: tl.constexpr, BLOCK_SIZE: tl.constexpr):
        pid = tl.program_id(0)
        offs = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offs < total
        n, c, i, j = _decode(offs, C, OH, OW, CHANNELS_LAST)
        base = n.to(tl.int64) * sxn + c.to(tl.int64) * sxc
        g = tl.load(grad_out_ptr + offs, mask=mask, other=0.0).to(ACC)
        if IS_MAX:
            code = tl.load(code_ptr + offs, mask=mask, other=0).to(tl.int32)
            d_h, d_w = _backward_sample(x_ptr, grad_x_ptr, params_ptr, base,
                                        2 * i + code // 2, 2 * j + code % 2,
                                        g, H, W, OH, OW, sxh, sxw, mask,
                                        NEED_X, NEED_H, NEED_W, ACC)
        else:
            g = g * 0.25
            d_h = tl.zeros_like(g)
            d_w = tl.zeros_like(g)
            for s in tl.static_range(4):
                part_h, part_w = _backward_sample(
                    x_ptr, grad_x_ptr, params_ptr, base, 2 * i + s // 2,
                    2 * j + s % 2, g, H, W, OH, OW, sxh, sxw, mask, NEED_X,
                    NEED_H, NEED_W, ACC)
                d_h += part_h
                d_w += part_w
        if NEED_H:
            tl.store(partial_ptr + 2 * pid,
                     tl.sum(tl.where(mask, d_h, 0.0), axis=0))
        if NEED_W:
            tl.store(partial_ptr + 2 * pid + 1,
                     tl.sum(tl.where(mask, d_w, 0.0), axis=0))


def _kernels_interpreted() -> bool:
    """Whether the kernels were made for the interpreter (TRITON_INTERPRET
    is read when ``triton.jit`` runs, i.e. when this module is imported)."""
    return type(_forward_kernel).__name__ == 'InterpretedFunction'


def _acc_dtypes(dtype: torch.dtype):
    """(torch, triton) accumulation dtypes for an input dtype."""
    if dtype == torch.float64:
        return torch.float64, tl.float64
    return torch.float32, tl.float32


def _ints(values) -> Tuple[int, ...]:
    """Sizes and strides as Python ints: under the JIT tracer (get_flops,
    exporters) they are 0-d tensors, which Triton would take for
    pointers."""
    return tuple(int(v) for v in values)


def _grid(total: int) -> Tuple[int]:
    return (triton.cdiv(total, BLOCK), )


def _params(x: Tensor, out_h: int, out_w: int,
            alpha_values: Tuple[float, float] = (1.0, 1.0)) -> Tensor:
    """Per-axis constants, on the device in the accumulation dtype (a
    Python float argument would reach a compiled kernel as fp32):
    PyTorch's ``in / (2 * out)`` position scale for H and W (divided in
    that dtype, as PyTorch does), then ``in**2 / (4 * out**2 * alpha**2)``
    (see ``_axis_taps``) for H and W."""
    acc = _acc_dtypes(x.dtype)[0]
    h, w = _ints(x.shape[2:])
    position = torch.tensor([h, w], dtype=acc) / torch.tensor(
        [2 * out_h, 2 * out_w], dtype=acc)
    slope = torch.tensor([
        size * size / (4.0 * out * out * a * a)
        for size, out, a in zip((h, w), (out_h, out_w), alpha_values)
    ], dtype=acc)
    return torch.cat([position, slope]).to(x.device)


def dynopool_forward(x: Tensor, out_h: int, out_w: int,
                     aggregation: str) -> Tuple[Tensor, Optional[Tensor]]:
    """The output and, for max, the int8 code of each cell's winning sample
    (``2 * row + column`` within the cell). ``x`` is read through its
    strides."""
    check_sizes(x, out_h, out_w)
    n, c, h, w = _ints(x.shape)
    layout = memory_format_of(x)
    out = torch.empty((n, c, out_h, out_w), dtype=x.dtype, device=x.device,
                      memory_format=layout)
    is_max = aggregation == 'max'
    code = torch.empty_like(out, dtype=torch.int8) if is_max else out
    total = int(out.numel())
    _forward_kernel[_grid(total)](
        x, out, code, _params(x, out_h, out_w), *_ints(x.stride()), c, h, w,
        out_h, out_w, total, IS_MAX=is_max,
        CHANNELS_LAST=layout == torch.channels_last,
        ACC=_acc_dtypes(x.dtype)[1], IS_BF16=x.dtype == torch.bfloat16,
        BLOCK_SIZE=BLOCK)
    return out, code if is_max else None


def dynopool_backward(x: Tensor, grad_out: Tensor, code: Optional[Tensor],
                      alpha_values: Tuple[float, float], need_x: bool,
                      learn: Tuple[bool, bool]
                      ) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """Gradients w.r.t. ``x`` (if ``need_x``) and ``alpha`` (if any of
    ``learn``; zero on the other axis) in one pass. ``x`` must be dense
    (see :func:`dense`): the input gradient buffer takes its strides."""
    _, c, h, w = _ints(x.shape)
    out_h, out_w = _ints(grad_out.shape[2:])
    layout = memory_format_of(x)
    grad_out = grad_out.contiguous(memory_format=layout)
    acc_torch, acc_triton = _acc_dtypes(x.dtype)
    total = int(grad_out.numel())
    grid = _grid(total)
    grad_x = torch.zeros_like(x, dtype=acc_torch, memory_format=layout) \
        if need_x else x
    partial = torch.zeros((grid[0], 2), dtype=acc_torch, device=x.device)
    _backward_kernel[grid](
        x, grad_out, grad_out if code is None else code, grad_x, partial,
        _params(x, out_h, out_w, alpha_values), *_ints(x.stride()), c, h, w,
        out_h, out_w, total, IS_MAX=code is not None,
        CHANNELS_LAST=layout == torch.channels_last, NEED_X=need_x,
        NEED_H=learn[0], NEED_W=learn[1], ACC=acc_triton, BLOCK_SIZE=BLOCK)
    grad_alpha = partial.sum(0) if any(learn) else None
    if not need_x:
        return None, grad_alpha
    return grad_x.to(x.dtype), grad_alpha


class TritonDynOPoolFunction(torch.autograd.Function):
    """DynOPool with the fused Triton kernels; the backend contract of
    :mod:`mmdynopool.ops.functional` (same arguments, outputs and
    gradients as :class:`~mmdynopool.ops.torch_backend.DynOPoolFunction`).
    """

    @staticmethod
    def forward(ctx, x: Tensor, alpha: Tensor, alpha_values: Tuple[float,
                                                                   float],
                out_h: int, out_w: int, aggregation: str, pinned_h: bool,
                pinned_w: bool) -> Tensor:
        # Dense once, here: the backward's input gradient takes its strides,
        # and it reads this copy rather than making another.
        x = dense(x)
        out, code = dynopool_forward(x, out_h, out_w, aggregation)
        ctx.save_for_backward(x, code)
        ctx.alpha_values = tuple(alpha_values)
        ctx.pinned = (pinned_h, pinned_w)
        ctx.alpha_dtype = alpha.dtype
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, code = ctx.saved_tensors
        learn = tuple(ctx.needs_input_grad[1] and not p for p in ctx.pinned)
        grad_x, grad_alpha = dynopool_backward(x, grad_out, code,
                                               ctx.alpha_values,
                                               ctx.needs_input_grad[0], learn)
        if ctx.needs_input_grad[1]:
            grad_alpha = grad_alpha.to(ctx.alpha_dtype) if grad_alpha is \
                not None else x.new_zeros(2, dtype=ctx.alpha_dtype)
        else:
            grad_alpha = None
        return grad_x, grad_alpha, None, None, None, None, None, None
