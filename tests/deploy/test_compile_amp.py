"""torch.compile of DynOPool models (training and frozen) and mixed
precision (bf16 autocast on CPU; fp16 / bf16 autocast on CUDA, skipped
without a GPU)."""
import copy

import pytest
import torch
import torch.nn as nn

from mmdynopool.deploy import freeze_dynopool
from mmdynopool.models.losses import GMACsLoss
from mmdynopool.ops import DynOPool
from tests.conftest import requires_cuda
from ._models import ToyNet, build_segmentor
from .test_freeze import seg_batch


class Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.pool1 = DynOPool((0.37, 0.61))
        self.mid = nn.Conv2d(8, 8, 3, padding=1)
        self.pool2 = DynOPool((1.45, 0.8), aggregation='avg')
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.mid(self.pool1(x)))
        return self.head(self.pool2(x))


class CountingBackend:
    """A torch.compile backend that counts the graphs Dynamo hands it."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, gm, example_inputs):
        self.graphs += 1
        return gm.forward


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_compile_inductor_forward_backward_matches_eager():
    model = Net()
    compiled_model = copy.deepcopy(model)
    # dynamic=False: see test_compile_recompiles_for_new_sizes
    compiled = torch.compile(compiled_model, dynamic=False)
    for _ in range(2):  # the second step reuses the compiled graphs
        x = torch.randn(2, 3, 32, 40)
        out = model(x)
        out_c = compiled(x)
        torch.testing.assert_close(out_c, out, rtol=1e-5, atol=1e-5)
        out.square().mean().backward()
        out_c.square().mean().backward()
        expected, actual = grads(model), grads(compiled_model)
        for name in expected:
            torch.testing.assert_close(
                actual[name], expected[name], rtol=1e-4, atol=1e-6,
                msg=name)
        assert expected['pool1.alpha'].abs().sum() > 0
        model.zero_grad()
        compiled_model.zero_grad()


def test_compile_recompiles_for_new_sizes():
    """Each new feature size is a new graph (the learned sizes are read on
    the host: a graph break at every DynOPool); the same size reuses it."""
    backend = CountingBackend()
    model = Net()
    compiled = torch.compile(model, backend=backend, dynamic=False)
    compiled(torch.randn(1, 3, 32, 40)).sum().backward()
    first = backend.graphs
    assert first >= 2  # the DynOPools split the forward
    compiled(torch.randn(1, 3, 32, 40)).sum().backward()
    assert backend.graphs == first
    compiled(torch.randn(1, 3, 24, 24)).sum().backward()
    assert backend.graphs > first


def test_frozen_model_compiles_once_for_all_sizes():
    """Frozen: no graph break, and with dynamic shapes one graph serves
    every input size (the integer size rule on symbolic shapes)."""
    backend = CountingBackend()
    frozen = freeze_dynopool(ToyNet().eval())
    compiled = torch.compile(frozen, backend=backend, dynamic=True)
    with torch.no_grad():
        for shape in [(32, 40), (57, 23), (64, 64), (9, 11)]:
            x = torch.randn(1, 3, *shape)
            torch.testing.assert_close(compiled(x), frozen(x))
    assert backend.graphs == 1


def test_frozen_model_aot_autograd_dynamic_matches_eager():
    """AOT autograd traces the frozen model with symbolic sizes (what
    inductor compiles; inductor itself takes a minute on 2 CPU cores)."""
    frozen = freeze_dynopool(Net().eval())
    compiled = torch.compile(frozen, backend='aot_eager', dynamic=True)
    with torch.no_grad():
        for shape in [(32, 40), (45, 19)]:
            x = torch.randn(2, 3, *shape)
            torch.testing.assert_close(compiled(x), frozen(x))


# -- mixed precision ----------------------------------------------------------
def amp_steps(model, device, dtype, steps=3, scaler=None, size=(32, 40)):
    """A few SGD steps under autocast; returns the losses and alpha grads
    (unscaled) of every step."""
    budget = GMACsLoss(loss_weight=0.01).attach(model)
    alphas = [m.alpha for m in model.modules() if isinstance(m, DynOPool)]
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    losses, alpha_grads = [], []
    for _ in range(steps):
        x = torch.randn(2, 3, *size, device=device)
        with torch.autocast(device, dtype=dtype):
            out = model(x)
            loss = out.float().square().mean() + budget()
        optimizer.zero_grad()
        if scaler is None:
            loss.backward()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        losses.append(float(loss))
        alpha_grads.append(torch.stack([a.grad for a in alphas]).float())
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()
    return losses, alpha_grads, alphas


def assert_finite(losses, alpha_grads, alphas):
    assert all(torch.isfinite(torch.tensor(losses)))
    for g in alpha_grads:
        assert torch.isfinite(g).all() and g.abs().sum() > 0
    for a in alphas:
        assert torch.isfinite(a).all()


def test_bf16_autocast_cpu_training_steps():
    model = Net()
    before = [m.alpha.detach().clone() for m in model.modules()
              if isinstance(m, DynOPool)]
    losses, alpha_grads, alphas = amp_steps(model, 'cpu', torch.bfloat16)
    assert_finite(losses, alpha_grads, alphas)
    assert any(not torch.equal(a, b) for a, b in zip(alphas, before))
    # close to the float32 gradient (bf16 has 8 bits of mantissa)
    reference = copy.deepcopy(model)
    x = torch.randn(2, 3, 32, 40)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low = model(x).float()
    high = reference(x)
    assert (low - high).abs().max() < 0.05 * high.abs().max() + 1e-3


def test_bf16_autocast_cpu_segmentor_loss():
    model = build_segmentor().train()
    batch = seg_batch(48, 40)
    # (training=True would pad to a configured size; the batch has one size)
    data = model.data_preprocessor(batch, training=False)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()
    assert torch.isfinite(loss)
    for m in model.modules():
        if isinstance(m, DynOPool):
            assert torch.isfinite(m.alpha.grad).all()


@requires_cuda
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_autocast_cuda_training_steps(dtype):
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip('this GPU has no bf16')
    model = Net().cuda()
    losses, alpha_grads, alphas = amp_steps(model, 'cuda', dtype)
    assert_finite(losses, alpha_grads, alphas)


@requires_cuda
def test_fp16_grad_scaler_cuda_segmentor():
    """--amp's setting: fp16 autocast with a dynamic loss scale; the
    unscaled alpha gradients of the steps taken are finite."""
    model = build_segmentor().train().cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler('cuda')
    alphas = [m.alpha for m in model.modules() if isinstance(m, DynOPool)]
    taken = 0
    for step in range(4):
        data = model.data_preprocessor(seg_batch(64, 48, seed=step),
                                       training=False)
        with torch.autocast('cuda', dtype=torch.float16):
            losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        grads = torch.stack([a.grad for a in alphas])
        scale = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        if scaler.get_scale() >= scale:  # the step was taken
            taken += 1
            assert torch.isfinite(grads).all()
    assert taken > 0
    assert all(torch.isfinite(a).all() for a in alphas)
