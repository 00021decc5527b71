"""DynOPool against the spec's oracles (shared/docs/dynopool-method.md)."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS

from mmdynopool import DynOPool, StaticDynOPool
from mmdynopool.ops import dynopool2d, dynopool2d_reference
from mmdynopool.ops.functional import query_positions
from tests.conftest import requires_cuda


def spec_oracle(x, size, aggregation='max'):
    queries = F.interpolate(
        x, size=(2 * size[0], 2 * size[1]), mode='bilinear',
        align_corners=False)
    pool = F.max_pool2d if aggregation == 'max' else F.avg_pool2d
    return pool(queries, 2)


def test_half_ratio_on_even_sizes_is_max_pool():
    x = torch.randn(2, 3, 16, 12)
    torch.testing.assert_close(DynOPool(0.5)(x), F.max_pool2d(x, 2),
                               rtol=0, atol=0)


@pytest.mark.parametrize('ratio,shape', [
    (0.5, (9, 13)), (0.3, (17, 20)), (0.73, (11, 7)), (1.0, (6, 6)),
    (1.7, (6, 9)), (3.2, (4, 3)), ((0.4, 1.6), (10, 12)),
    ((2.5, 0.35), (8, 16))
])
@pytest.mark.parametrize('aggregation', ['max', 'avg'])
def test_equals_interpolate_then_pool(ratio, shape, aggregation):
    x = torch.randn(2, 4, *shape, dtype=torch.float64)
    layer = DynOPool(ratio, aggregation=aggregation).double()
    out = layer(x)
    r_h, r_w = (ratio, ratio) if isinstance(ratio, float) else ratio
    expected_size = (math.floor(r_h * shape[0] + 0.5),
                     math.floor(r_w * shape[1] + 0.5))
    assert out.shape[2:] == expected_size == layer.output_size(*shape)
    torch.testing.assert_close(out, spec_oracle(x, expected_size,
                                                aggregation))


def test_upsampling_and_anisotropy():
    x = torch.randn(1, 2, 8, 8)
    assert DynOPool(2.0)(x).shape[2:] == (16, 16)
    assert DynOPool((0.5, 1.5))(x).shape[2:] == (4, 12)


def test_matches_naive_grid_sample_route_with_gradients():
    x = torch.randn(2, 3, 13, 10, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor([1 / 0.37, 1 / 1.63], dtype=torch.float64,
                         requires_grad=True)
    out = dynopool2d(x, alpha)
    ref = dynopool2d_reference(x, alpha)
    torch.testing.assert_close(out, ref)
    grad = torch.randn_like(out)
    gx, ga = torch.autograd.grad((out * grad).sum(), (x, alpha))
    rx, ra = torch.autograd.grad((ref * grad).sum(), (x, alpha))
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(ga, ra)


def linearised(x, alpha0, alpha, out_size, aggregation='max'):
    """The function the straight-through estimate linearises: fixed output
    size, sampling positions from H_hat = H_out + H/alpha - H/alpha0."""
    h, w = x.shape[2:]
    hat = (out_size[0] + h / alpha[0] - h / alpha0[0],
           out_size[1] + w / alpha[1] - w / alpha0[1])

    def queries(hat_axis, n):
        k = torch.arange(2 * n, dtype=x.dtype)
        return -1 + (2 * k + 1) / (2 * hat_axis)

    rows, cols = queries(hat[0], out_size[0]), queries(hat[1], out_size[1])
    grid = torch.stack(torch.meshgrid(cols, rows, indexing='xy'), -1)
    sampled = F.grid_sample(x, grid[None].expand(x.shape[0], -1, -1, -1),
                            padding_mode='border', align_corners=False)
    pool = F.max_pool2d if aggregation == 'max' else F.avg_pool2d
    return pool(sampled, 2)


@pytest.mark.parametrize('ratio', [(0.37, 0.57), (1.43, 0.29), (2.3, 1.7)])
@pytest.mark.parametrize('aggregation', ['max', 'avg'])
def test_alpha_gradient_is_finite_difference_of_linearisation(
        ratio, aggregation):
    x = torch.randn(1, 3, 11, 14, dtype=torch.float64)
    alpha = torch.tensor([1 / ratio[0], 1 / ratio[1]], dtype=torch.float64,
                         requires_grad=True)
    weights = torch.randn_like(dynopool2d(x, alpha.detach(), aggregation))
    (dynopool2d(x, alpha, aggregation) * weights).sum().backward()
    out_size = weights.shape[2:]
    # Away from the kinks of the bilinear interpolant (query points on pixel
    # centres), where a central difference averages two one-sided slopes.
    for in_size, n in zip(x.shape[2:], out_size):
        positions = query_positions(in_size, n)
        assert (positions - positions.round()).abs().min() > 1e-3
    eps = 1e-6
    for axis in range(2):
        step = torch.zeros(2, dtype=torch.float64)
        step[axis] = eps
        a0 = alpha.detach()
        plus = (linearised(x, a0, a0 + step, out_size, aggregation) *
                weights).sum()
        minus = (linearised(x, a0, a0 - step, out_size, aggregation) *
                 weights).sum()
        numeric = (plus - minus) / (2 * eps)
        assert alpha.grad[axis].item() == pytest.approx(
            numeric.item(), rel=1e-5, abs=1e-8)
        assert abs(numeric.item()) > 1e-3  # the check is not vacuous


@pytest.mark.parametrize('ratio', [0.5, 0.42, (1.6, 0.7)])
def test_gradcheck_input(ratio):
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    layer = DynOPool(ratio).double()
    assert torch.autograd.gradcheck(lambda t: layer(t), (x, ))


def test_gradients_reach_input_and_alpha():
    layer = DynOPool((0.6, 0.45))
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    layer(x).square().mean().backward()
    assert x.grad.abs().sum() > 0
    assert layer.alpha.grad is not None
    assert torch.all(layer.alpha.grad != 0)


def test_one_pixel_and_batch_one():
    x = torch.randn(1, 1, 1, 1, requires_grad=True)
    layer = DynOPool(0.5)
    out = layer(x)
    assert out.shape == (1, 1, 1, 1)
    torch.testing.assert_close(out, x.detach())
    out.sum().backward()
    assert x.grad.item() == pytest.approx(1.0)
    assert torch.all(layer.alpha.grad == 0)  # size pinned at 1


def test_min_size_pins_the_size_and_its_gradient():
    layer = DynOPool(0.25, min_size=3)
    x = torch.randn(1, 2, 8, 20)
    out = layer(x)
    assert out.shape[2:] == (3, 5)
    out.sum().backward()
    assert layer.alpha.grad[0] == 0
    assert layer.alpha.grad[1] != 0


def test_ratio_range_is_enforced_on_alpha():
    layer = DynOPool(0.5, ratio_range=(0.25, 2.0))
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([10.0, 0.1]))
    out = layer(torch.randn(1, 1, 16, 16))
    assert layer.ratio == (0.25, 2.0)
    assert out.shape[2:] == (4, 32)
    assert torch.allclose(layer.alpha, torch.tensor([4.0, 0.5]))


def test_ratio_property_and_alpha_shape():
    layer = DynOPool((0.5, 2.0))
    assert layer.alpha.shape == (2, )
    assert layer.ratio == pytest.approx((0.5, 2.0))
    assert layer.output_size(10, 10) == (5, 20)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_cpu(dtype):
    layer = DynOPool((0.45, 0.55))
    x = torch.randn(2, 3, 20, 20, requires_grad=True)
    with torch.autocast('cpu', dtype=dtype):
        out = layer(x.to(dtype))
    out.float().square().mean().backward()
    ref = DynOPool((0.45, 0.55))(x.detach())
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, atol=3e-2, rtol=3e-2)
    assert torch.isfinite(layer.alpha.grad).all()
    assert torch.isfinite(x.grad).all()


def test_channels_last_matches_contiguous():
    x = torch.randn(2, 8, 14, 18)
    alpha = torch.tensor([1 / 0.6, 1 / 0.4], requires_grad=True)
    alpha_cl = alpha.detach().clone().requires_grad_()
    x_cl = x.to(memory_format=torch.channels_last).requires_grad_()
    x = x.requires_grad_()
    out, out_cl = dynopool2d(x, alpha), dynopool2d(x_cl, alpha_cl)
    torch.testing.assert_close(out, out_cl)
    grad = torch.randn_like(out)
    (out * grad).sum().backward()
    (out_cl * grad).sum().backward()
    torch.testing.assert_close(x.grad, x_cl.grad)
    torch.testing.assert_close(alpha.grad, alpha_cl.grad)


def test_state_dict_round_trip():
    layer = DynOPool((0.5, 0.7))
    with torch.no_grad():
        layer.alpha.add_(torch.tensor([0.13, -0.07]))
    other = DynOPool(0.5)
    other.load_state_dict(layer.state_dict())
    assert other.ratio == layer.ratio
    x = torch.randn(1, 2, 15, 15)
    torch.testing.assert_close(other(x), layer(x))


@pytest.mark.parametrize('ratio', [0.5, (0.37, 1.4), 2.0])
@pytest.mark.parametrize('aggregation', ['max', 'avg'])
def test_deploy_form_equals_layer(ratio, aggregation):
    layer = DynOPool(ratio, aggregation=aggregation)
    static = layer.to_static()
    assert isinstance(static, StaticDynOPool)
    assert not list(static.parameters())
    for shape in [(16, 16), (9, 23)]:
        x = torch.randn(2, 3, *shape)
        torch.testing.assert_close(static(x), layer(x))


def test_registered_and_buildable_from_configs():
    layer = MODELS.build(dict(type='DynOPool', init_ratio=(0.5, 0.25)))
    assert isinstance(layer, DynOPool)
    from mmseg.registry import MODELS as SEG_MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmseg'):
        assert isinstance(SEG_MODELS.build(dict(type='DynOPool')), DynOPool)


@pytest.mark.parametrize('bad', [
    torch.randn(3, 8, 8), torch.randn(1, 1, 1, 8, 8), torch.randn(0, 3, 8, 8),
    torch.zeros(1, 1, 4, 4, dtype=torch.long)
])
def test_bad_inputs_raise_clear_errors(bad):
    with pytest.raises((ValueError, TypeError), match='x must'):
        DynOPool()(bad)


@pytest.mark.parametrize('kwargs,match', [
    (dict(init_ratio=0), 'init_ratio'), (dict(init_ratio=-0.5), 'init_ratio'),
    (dict(init_ratio=float('nan')), 'init_ratio'),
    (dict(init_ratio=float('inf')), 'init_ratio'),
    (dict(init_ratio=(0.5, 0.5, 0.5)), 'init_ratio'),
    (dict(init_ratio='half'), 'init_ratio'),
    (dict(aggregation='median'), 'aggregation'),
    (dict(ratio_range=(2.0, 0.5)), 'ratio_range'),
    (dict(ratio_range=(0.0, 2.0)), 'ratio_range'),
    (dict(init_ratio=8.0), 'ratio_range'), (dict(min_size=0), 'min_size')
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DynOPool(**kwargs)


@pytest.mark.parametrize('value', [float('nan'), float('inf'), -1.0, 0.0])
def test_bad_alpha_raises_naming_alpha(value):
    layer = DynOPool()
    with torch.no_grad():
        layer.alpha[0] = value
    with pytest.raises(ValueError, match='alpha'):
        layer(torch.randn(1, 1, 8, 8))


@requires_cuda
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16,
                                   torch.float16])
@pytest.mark.parametrize(
    'size,ratio',
    [((19, 23), (0.41, 0.67)),
     ((16, 24), (0.5, 0.5)),  # every query point on a pixel centre
     ((18, 24), (1 / 6, 1 / 6))])  # every other one
def test_cuda_matches_cpu(dtype, size, ratio):
    x = torch.randn(2, 4, *size)
    alpha = torch.tensor([1 / ratio[0], 1 / ratio[1]], requires_grad=True)
    out = dynopool2d(x, alpha)
    grad = torch.randn_like(out)
    (out * grad).sum().backward()
    x_cuda = x.cuda().to(dtype).requires_grad_()
    alpha_cuda = alpha.detach().cuda().requires_grad_()
    out_cuda = dynopool2d(x_cuda, alpha_cuda)
    (out_cuda * grad.cuda().to(dtype)).sum().backward()
    tol = 1e-5 if dtype == torch.float32 else 5e-2
    torch.testing.assert_close(out_cuda.float().cpu(), out, atol=tol,
                               rtol=tol)
    torch.testing.assert_close(alpha_cuda.grad.cpu(), alpha.grad,
                               atol=tol * 50, rtol=tol * 5)



def forward_and_gradients(x, alpha, aggregation):
    x = x.detach().requires_grad_()
    alpha = alpha.detach().requires_grad_()
    out = dynopool2d(x, alpha, aggregation)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype)
    (out * weights.view_as(out)).sum().backward()
    return out, x.grad, alpha.grad


@pytest.mark.parametrize('ratio', [0.5, (0.6, 1.4), (0.3, 0.45)])
@pytest.mark.parametrize('aggregation', ['max', 'avg'])
@pytest.mark.parametrize('layout', ['contiguous', 'channels_last', 'strided'])
@pytest.mark.parametrize('shape', [(5, 16, 12, 10), (2, 32, 64, 64)])
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_batch_chunks_and_work_layouts_agree(monkeypatch, ratio,
                                             aggregation, layout, shape,
                                             dtype):
    """The CPU splits big batches into chunks (away from r = 0.5 also
    samples into groups of channels) and, at r = 0.5, pools channels-last
    (converting big samples with per-sample 2-D transposes); none of this
    may change the results, and the output stays bitwise the deploy form's.
    Other devices run the whole batch in the input's layout."""
    from mmdynopool.ops import torch_backend as functional
    from mmdynopool.ops.functional import BACKEND_ENV
    monkeypatch.setenv(BACKEND_ENV, 'torch')  # its chunks and layouts
    r_h, r_w = (ratio, ratio) if isinstance(ratio, float) else ratio
    x = torch.randn(*shape, dtype=dtype)
    if layout == 'channels_last':
        x = x.to(memory_format=torch.channels_last)
    elif layout == 'strided':
        x = torch.randn(*shape[:2], shape[3], shape[2],
                        dtype=dtype).transpose(2, 3)
    alpha = torch.tensor([1 / r_h, 1 / r_w], dtype=dtype)
    whole = forward_and_gradients(x, alpha, aggregation)
    assert torch.equal(whole[0],
                       spec_oracle(x, whole[0].shape[2:], aggregation))
    assert whole[1].stride() == torch.empty_like(x).stride()
    # One sample a chunk; NCHW away from r = 0.5: one 64-byte group of one
    # sample's channels.
    monkeypatch.setattr(functional, 'CHUNK_BYTES', 1)
    monkeypatch.setattr(functional, 'CACHE_CHUNK_BYTES', 1)
    chunked = forward_and_gradients(x, alpha, aggregation)
    monkeypatch.setattr(functional, 'work_layout',
                        functional.memory_format_of)
    own_layout = forward_and_gradients(x, alpha, aggregation)
    # The gradients' sums run in other orders; in float32 alpha's gradient
    # (a sum with much cancellation) then differs in the fourth digit.
    tol = {} if dtype == torch.float64 else dict(rtol=1e-3, atol=1e-3)
    for result in (chunked, own_layout):
        assert torch.equal(result[0], whole[0])
        torch.testing.assert_close(result[1], whole[1], **tol)
        torch.testing.assert_close(result[2], whole[2], **tol)


@pytest.mark.parametrize('aggregation', ['max', 'avg'])
@pytest.mark.parametrize('ratio', [0.5, 1 / 6])
def test_alpha_gradient_on_pixel_centres_is_central_difference(
        aggregation, ratio):
    """Where query points sit on pixel centres (all of them at r = 0.5 on
    even sizes, every other row at r = 1/6 on multiples of 6) the
    interpolant has kinks: the gradient is the mean of the two one-sided
    derivatives, i.e. a central difference of the linearisation, not the
    one-sided slope on the side alpha grows to."""
    x = torch.randn(2, 9, 12, 24, dtype=torch.float64)
    alpha = torch.full((2, ), 1 / ratio, dtype=torch.float64,
                       requires_grad=True)
    out = dynopool2d(x, alpha.detach(), aggregation)
    out_size = out.shape[2:]
    for in_size, n in zip(x.shape[2:], out_size):
        positions = query_positions(in_size, n)
        assert (positions == positions.round()).any()  # kinks are hit
    weights = torch.randn_like(out)
    (dynopool2d(x, alpha, aggregation) * weights).sum().backward()
    eps = 1e-7
    a0 = alpha.detach()
    for axis in range(2):
        step = torch.zeros(2, dtype=torch.float64)
        step[axis] = eps
        plus, minus = ((linearised(x, a0, a, out_size, aggregation) *
                        weights).sum() for a in (a0 + step, a0 - step))
        base = (linearised(x, a0, a0, out_size, aggregation) * weights).sum()
        right, left = (plus - base) / eps, (base - minus) / eps
        assert abs(right - left) > 1e-3  # a real kink: the sides differ
        assert alpha.grad[axis].item() == pytest.approx(
            ((right + left) / 2).item(), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize('shape', [(1, 1, 1, 5), (2, 3, 1, 1), (1, 2, 5, 1),
                                   (2, 9, 7, 3)])
@pytest.mark.parametrize('ratio', [(3.0, 0.7), (0.3, 1.0), (1 / 6, 0.5)])
@pytest.mark.parametrize('channels_last', [False, True])
def test_size_one_axes_in_both_layouts_match_reference(shape, ratio,
                                                       channels_last):
    """Axes of size 1 make channels-last and contiguous strides coincide
    for some tensors (the input, its output gradient) and not for others;
    the backward must still read every tensor in the input's layout."""
    x = torch.randn(*shape, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    alpha = torch.tensor([1 / ratio[0], 1 / ratio[1]], dtype=torch.float64)
    ours = x.clone().requires_grad_()
    theirs = x.clone().requires_grad_()
    out = dynopool2d(ours, alpha)
    ref = dynopool2d_reference(theirs, alpha)
    torch.testing.assert_close(out, ref)
    grad = torch.randn_like(out)
    (out * grad).sum().backward()
    (ref * grad).sum().backward()
    torch.testing.assert_close(ours.grad, theirs.grad)
