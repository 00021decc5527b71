"""The fused backends (Triton, and the C++ kernels of the cpu backend)
against the torch backend and the spec's oracles.

Every test of the contract runs once per fused backend (the ``fused``
fixture). The cpu backend runs CPU tensors. Without a GPU the Triton
kernels run on CPU tensors in Triton's interpreter (``TRITON_INTERPRET=1``,
set in ``tests/conftest.py``); with one, the same tests run the compiled
kernels on CUDA tensors.
"""
import importlib.util

import pytest
import torch
import torch.nn.functional as F

from mmdynopool import DynOPool
from mmdynopool.ops import dynopool2d, dynopool2d_reference, resolve_backend
from mmdynopool.ops import functional
from tests.conftest import requires_cpu_kernels

requires_triton = pytest.mark.skipif(
    importlib.util.find_spec('triton') is None,
    reason="needs triton (the 'tests' extra installs it)")

TRITON_DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'
# The device the current test's tensors live on (set by the fixture).
DEVICE = TRITON_DEVICE


@pytest.fixture(params=[
    pytest.param('triton', marks=requires_triton),
    pytest.param('cpu', marks=requires_cpu_kernels)
])
def fused(request):
    """The fused backend under test; its tensors' device becomes DEVICE."""
    global DEVICE
    DEVICE = TRITON_DEVICE if request.param == 'triton' else 'cpu'
    yield request.param
    DEVICE = TRITON_DEVICE

# Ratios of the issue: 0.5 on even and odd sizes, off 0.5 either side, the
# identity scale of dilated stages, upsampling and anisotropy.
RATIOS = [((0.5, 0.5), (12, 10)), ((0.5, 0.5), (11, 9)),
          ((0.37, 0.37), (13, 10)), ((0.45, 0.45), (12, 14)),
          ((0.55, 0.55), (12, 14)), ((1.0, 1.0), (7, 9)),
          ((1.7, 1.7), (6, 5)), ((0.4, 0.7), (10, 12))]


def as_alpha(ratio, dtype, requires_grad=True):
    return torch.tensor([1 / ratio[0], 1 / ratio[1]], dtype=dtype,
                        device=DEVICE, requires_grad=requires_grad)


def run(x, alpha, aggregation, backend, min_size=1, weights=None):
    """Output and gradients (x, alpha) of a weighted sum of the output."""
    x = x.detach().requires_grad_()
    alpha = alpha.detach().requires_grad_()
    out = dynopool2d(x, alpha, aggregation, min_size, backend=backend)
    if weights is None:
        weights = torch.randn(out.shape, dtype=torch.float64,
                              device=x.device, generator=torch.Generator(
                                  x.device).manual_seed(1))
    grad_x, grad_alpha = torch.autograd.grad(
        (out * weights.to(out.dtype)).sum(), (x, alpha))
    return out, grad_x, grad_alpha


def deploy(x, size, aggregation):
    """The spec's equivalent form, also the deploy form (StaticDynOPool)."""
    queries = F.interpolate(x, size=(2 * size[0], 2 * size[1]),
                            mode='bilinear', align_corners=False)
    pool = F.max_pool2d if aggregation == 'max' else F.avg_pool2d
    return pool(queries, 2)


def make_input(shape, dtype=torch.float32, layout='nchw'):
    x = torch.randn(*shape, dtype=dtype, device=DEVICE)
    if layout == 'channels_last':
        x = x.to(memory_format=torch.channels_last)
    return x


@pytest.mark.parametrize('ratio,size', RATIOS)
@pytest.mark.parametrize('aggregation', ['max', 'avg'])
@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
def test_equals_torch_backend_in_float32(fused, ratio, size, aggregation, layout):
    """Forward within 1e-6, gradients within 1e-5 relative: the input
    gradient elementwise, alpha's against the scale of its terms (a sum of
    many terms that cancel, added in another order)."""
    x = make_input((2, 5, *size), layout=layout)
    alpha = as_alpha(ratio, torch.float32)
    ours = run(x, alpha, aggregation, fused)
    theirs = run(x, alpha, aggregation, 'torch')
    deploy_form = deploy(x, ours[0].shape[2:], aggregation)
    torch.testing.assert_close(ours[0], deploy_form, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        theirs[0], deploy_form, rtol=0, atol=1e-6,
        msg=lambda m: 'the torch backend left the deploy form '
        f'(interpolate + pool) by more than 1e-6 in float32: {m}')
    torch.testing.assert_close(ours[0], theirs[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(ours[1], theirs[1], rtol=1e-5, atol=1e-6)
    exact = run(x.double(), alpha.double(), aggregation, 'torch')[2]
    scale = exact.abs().max().item() + 1.0
    for grad_alpha in (ours[2], theirs[2]):
        assert (grad_alpha.double() - exact).abs().max() < 1e-5 * scale
    assert ours[0].is_contiguous(memory_format=torch.channels_last) == (
        layout == 'channels_last')
    assert ours[1].stride() == x.stride()


@pytest.mark.parametrize('ratio,size', RATIOS)
@pytest.mark.parametrize('aggregation', ['max', 'avg'])
def test_equals_torch_backend_in_float64(fused, ratio, size, aggregation):
    """Same arithmetic: in float64 the two backends agree to rounding."""
    x = make_input((2, 3, *size), dtype=torch.float64)
    alpha = as_alpha(ratio, torch.float64)
    for ours, theirs in zip(run(x, alpha, aggregation, fused),
                            run(x, alpha, aggregation, 'torch')):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('ratio,size', [((0.37, 1.63), (13, 10)),
                                        ((0.45, 0.7), (12, 14))])
def test_matches_the_spec_written_with_grid_sample(fused, ratio, size):
    """The naive route (grid_sample on the straight-through grid, autograd)
    away from pixel centres, where both gradients are the true ones."""
    x = make_input((2, 3, *size), dtype=torch.float64)
    alpha = as_alpha(ratio, torch.float64)
    ours = run(x, alpha, 'max', fused)
    x_ref = x.detach().requires_grad_()
    alpha_ref = alpha.detach().requires_grad_()
    ref = dynopool2d_reference(x_ref, alpha_ref)
    weights = torch.randn(ref.shape, dtype=torch.float64, device=DEVICE,
                          generator=torch.Generator(DEVICE).manual_seed(1))
    (ref * weights).sum().backward()
    torch.testing.assert_close(ours[0], ref)
    torch.testing.assert_close(ours[1], x_ref.grad)
    torch.testing.assert_close(ours[2], alpha_ref.grad)


def test_half_ratio_on_even_sizes_is_max_pool(fused):
    x = make_input((2, 4, 16, 12))
    out = dynopool2d(x, as_alpha((0.5, 0.5), torch.float32, False),
                     backend=fused)
    assert torch.equal(out, F.max_pool2d(x, 2))


@pytest.mark.parametrize('aggregation', ['max', 'avg'])
def test_input_gradient_passes_gradcheck(fused, aggregation):
    x = make_input((1, 2, 7, 6), dtype=torch.float64).requires_grad_()
    alpha = as_alpha((0.45, 0.7), torch.float64, False)
    assert torch.autograd.gradcheck(
        lambda t: dynopool2d(t, alpha, aggregation, backend=fused), (x, ))


@pytest.mark.parametrize('aggregation', ['max', 'avg'])
def test_size_pinned_at_min_size_gets_no_alpha_gradient(fused, aggregation):
    """H is held at min_size (round(0.1 * 6) = 1 < 3): that axis does not
    move with alpha; W still learns."""
    x = make_input((2, 3, 6, 12))
    alpha = as_alpha((0.1, 0.45), torch.float32)
    ours = run(x, alpha, aggregation, fused, min_size=3)
    theirs = run(x, alpha, aggregation, 'torch', min_size=3)
    assert ours[0].shape[2:] == (3, 5)
    assert ours[2][0].item() == 0.0 and ours[2][1].item() != 0.0
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def clear_winners(x, size, margin):
    """1 for the cells whose best sample leads the second by more than
    ``margin`` (relative), 0 elsewhere: there, rounding the samples cannot
    change which one max selects."""
    queries = F.interpolate(x.double(), size=(2 * size[0], 2 * size[1]),
                            mode='bilinear', align_corners=False)
    cells = F.unfold(queries, 2, stride=2).view(*x.shape[:2], 4, *size)
    top = cells.topk(2, dim=2).values
    gap = top[:, :, 0] - top[:, :, 1]
    return (gap > margin * (top[:, :, 0].abs() + 1e-3)).double()


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('aggregation', ['max', 'avg'])
@pytest.mark.parametrize('ratio', [(0.45, 0.45), (0.4, 0.7), (1.0, 1.0)])
def test_half_precision_accumulates_in_float32(fused, dtype, aggregation, ratio):
    """fp16 / bf16 in, fp32 arithmetic, results in the input's dtype: the
    forward is the float32 result (on the same, rounded, input) rounded to
    the nearest value of the dtype (avg: within one step of it, as it
    averages rounded samples), and so are the gradients. Cells where
    rounding could change max's choice carry no gradient here."""
    x = make_input((2, 4, 12, 14)).to(dtype)
    alpha = as_alpha(ratio, torch.float32)
    eps = torch.finfo(dtype).eps
    size = dynopool2d(x, alpha.detach(), backend='torch').shape[2:]
    weights = torch.randn(*x.shape[:2], *size, dtype=torch.float64,
                          device=DEVICE)
    if aggregation == 'max':
        weights *= clear_winners(x, size, 4 * eps)
    ours = run(x, alpha, aggregation, fused, weights=weights)
    exact = run(x.float(), alpha, aggregation, fused, weights=weights)
    assert ours[0].dtype == ours[1].dtype == dtype
    if aggregation == 'max':
        assert torch.equal(ours[0], exact[0].to(dtype))
    else:  # the mean of the rounded samples (as in the deploy form)
        torch.testing.assert_close(ours[0], exact[0].to(dtype), rtol=eps,
                                   atol=eps)
    torch.testing.assert_close(ours[1], exact[1].to(dtype), rtol=eps,
                               atol=eps)
    scale = exact[2].abs().max().item() + 1.0
    assert (ours[2] - exact[2]).abs().max() < 4 * eps * scale


def test_two_chained_layers_agree_with_torch_backend(fused, monkeypatch):
    """A downsampling and an upsampling DynOPool in a row, both alphas
    learning, through the layer (MMDYNOPOOL_BACKEND picks the backend)."""
    torch.manual_seed(0)
    layers = torch.nn.Sequential(DynOPool(0.45), DynOPool((1.7, 1.3))).to(
        DEVICE)
    x = make_input((2, 4, 13, 11))
    results = {}
    for backend in (fused, 'torch'):
        monkeypatch.setenv(functional.BACKEND_ENV, backend)
        layers.zero_grad()
        x_in = x.detach().requires_grad_()
        out = layers(x_in)
        (out * torch.linspace(-1, 1, out.numel(), device=DEVICE).view_as(
            out)).sum().backward()
        results[backend] = (out, x_in.grad, layers[0].alpha.grad.clone(),
                            layers[1].alpha.grad.clone())
    assert results[fused][0].shape[2:] == (10, 6)
    for ours, theirs in zip(results[fused], results['torch']):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


@requires_triton
def test_triton_max_code_is_compact():
    """The forward keeps one int8 per output cell, not an int64 map over
    the query grid."""
    from mmdynopool.ops.triton_backend import dynopool_forward
    x = make_input((2, 3, 8, 8))
    out, code = dynopool_forward(x, 4, 4, 'max')
    assert code.dtype == torch.int8 and code.shape == out.shape
    assert torch.equal(code.long(), winner_code(x))


def winner_code(x):
    """``2 * row + column`` of each 4x4 cell's winning sample, from
    max_pool2d's indices on the 8x8 query grid of an 8x8 ``x``."""
    queries = F.interpolate(x, size=(8, 8), mode='bilinear',
                            align_corners=False)
    _, indices = F.max_pool2d(queries, 2, return_indices=True)
    rows, cols = indices // 8, indices % 8
    return (rows % 2) * 2 + cols % 2


@requires_cpu_kernels
def test_cpu_max_code_is_compact():
    """The C++ forward keeps one uint8 per output cell: the winner's row
    and column within the cell, as max_pool2d's indices on the query grid
    give them."""
    from mmdynopool.ops import cpu_backend
    x = torch.randn(2, 3, 8, 8)
    tables = (cpu_backend.axis_tables(8, 4, 2.0, x.dtype) +
              cpu_backend.axis_tables(8, 4, 2.0, x.dtype))
    out, code = cpu_backend.kernels().forward(x, *tables, True, False)
    assert code.dtype == torch.uint8 and code.shape == out.shape
    assert torch.equal(code.long(), winner_code(x))


@requires_triton
@requires_cpu_kernels
def test_backend_choice(monkeypatch):
    x = torch.zeros(1, 1, 4, 4)
    monkeypatch.delenv(functional.BACKEND_ENV, raising=False)
    assert resolve_backend(x) == 'cpu'  # auto: the C++ kernels on the CPU
    assert resolve_backend(x.double()) == 'cpu'
    monkeypatch.setenv(functional.BACKEND_ENV, 'torch')
    assert resolve_backend(x) == 'torch'
    monkeypatch.setenv(functional.BACKEND_ENV, 'triton')
    assert resolve_backend(x) == 'triton'  # under the interpreter
    assert resolve_backend(x, 'torch') == 'torch'  # the argument wins
    monkeypatch.setenv(functional.BACKEND_ENV, 'cuda')
    with pytest.raises(ValueError, match='MMDYNOPOOL_BACKEND must be one'):
        dynopool2d(x, torch.tensor([2.0, 2.0]))
    with pytest.raises(ValueError, match='backend must be one of'):
        dynopool2d(x, torch.tensor([2.0, 2.0]), backend='fast')


@requires_triton
def test_auto_stays_on_torch_for_cuda_until_validated():
    """Until the kernels have passed the CUDA tests compiled on a GPU,
    'auto' does not route CUDA tensors to them."""
    assert functional.TRITON_VALIDATED_ON_CUDA is False
    if torch.cuda.is_available():
        x = torch.zeros(1, 1, 4, 4, device='cuda')
        assert resolve_backend(x, 'auto') == 'torch'


@requires_triton
def test_triton_backend_never_falls_back(monkeypatch):
    """Where the kernels cannot run, 'triton' is an error that says what
    to change, not a silent switch to the torch path."""
    from mmdynopool.ops import triton_backend
    x = torch.zeros(1, 1, 4, 4)
    alpha = torch.tensor([2.0, 2.0])
    monkeypatch.setenv('TRITON_INTERPRET', '0')
    with pytest.raises(RuntimeError, match='TRITON_INTERPRET=1'):
        dynopool2d(x, alpha, backend='triton')
    monkeypatch.setattr(triton_backend, 'triton', None)
    with pytest.raises(RuntimeError, match='MMDYNOPOOL_BACKEND=torch'):
        dynopool2d(x, alpha, backend='triton')
    monkeypatch.undo()
    with pytest.raises(TypeError, match='set MMDYNOPOOL_BACKEND=torch'):
        triton_backend.check_can_run(
            torch.zeros(1, 1, 4, 4, dtype=torch.int32, device=DEVICE))


def test_cpu_backend_never_falls_back_but_auto_does(monkeypatch):
    """Where the C++ kernels cannot be built, 'cpu' is an error that says
    what to change; 'auto' runs the torch backend, with one warning."""
    from mmdynopool.ops import cpu_backend
    x = torch.randn(1, 2, 6, 6)
    alpha = torch.tensor([2.2, 1.8])
    monkeypatch.setattr(cpu_backend, '_kernels', None)
    monkeypatch.setattr(cpu_backend, '_build_error',
                        'CalledProcessError: g++ not found')
    monkeypatch.setattr(functional, '_warned_cpu_fallback', False)
    with pytest.raises(RuntimeError, match=r'g\+\+ not found.*ninja'):
        dynopool2d(x, alpha, backend='cpu')
    with pytest.warns(RuntimeWarning, match='torch backend on the CPU'):
        assert resolve_backend(x, 'auto') == 'torch'
    expected = dynopool2d(x, alpha, backend='torch')
    torch.testing.assert_close(dynopool2d(x, alpha), expected, rtol=0,
                               atol=0)
    monkeypatch.undo()
    with pytest.raises(RuntimeError, match='runs CPU tensors'):
        cpu_backend.check_can_run(x.to('meta'))


@requires_cpu_kernels
def test_cpu_backend_gradients_do_not_depend_on_threads():
    """Work units own disjoint parts of x and alpha's partial sums are
    added in unit order: the same bits with 1 thread as with 2."""
    x = torch.randn(2, 24, 15, 13).to(memory_format=torch.channels_last)
    alpha = torch.tensor([1 / 0.45, 1 / 0.7])
    threads = torch.get_num_threads()
    try:
        results = []
        for count in (1, 2):
            torch.set_num_threads(count)
            results.append(run(x, alpha, 'max', 'cpu'))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_random_configurations_agree_with_torch_backend(fused):
    """Seeded random shapes, ratios over the whole default ratio_range
    (1/16 to 4), min_size, layouts and aggregations, in float64; for max,
    cells whose best two samples nearly tie carry no gradient (either
    choice is right there)."""
    import random
    rng = random.Random(0)
    for _ in range(30):
        shape = (rng.randint(1, 2), rng.randint(1, 4), rng.randint(1, 15),
                 rng.randint(1, 15))
        ratio = tuple(
            rng.choice([rng.uniform(1 / 16, 4), 0.5, 1.0, 2.0, 0.25])
            for _ in range(2))
        aggregation = rng.choice(['max', 'avg'])
        min_size = rng.choice([1, 1, 2, 3])
        x = make_input(shape, torch.float64,
                       rng.choice(['nchw', 'channels_last']))
        alpha = as_alpha(ratio, torch.float64)
        size = dynopool2d(x, alpha.detach(), aggregation, min_size,
                          backend='torch').shape[2:]
        weights = torch.randn(*shape[:2], *size, dtype=torch.float64,
                              device=DEVICE)
        if aggregation == 'max':
            weights *= clear_winners(x, size, 1e-9)
        case = (shape, ratio, aggregation, min_size)
        for ours, theirs in zip(
                run(x, alpha, aggregation, fused, min_size, weights),
                run(x, alpha, aggregation, 'torch', min_size, weights)):
            torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-9,
                                       msg=lambda m: f'{case}: {m}')
