"""The compute-budget loss: value, gradients, chain, target mode."""
import pytest
import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.registry import MODELS

from mmdynopool import DynOPool
from mmdynopool.models.losses import GMACsLoss, MACsRecorder
from mmdynopool.models.losses.macs_recorder import MAC_LAYER_TYPES


class Net(nn.Module):
    """Convs around two DynOPools, a strided conv, a transposed conv and a
    linear head: every kind of MAC-bearing layer the recorder counts."""

    def __init__(self, r1=0.5, r2=0.5):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.pool1 = DynOPool(r1)
        self.mid = nn.Conv2d(16, 32, 3, padding=1, groups=2)
        self.pool2 = DynOPool(r2)
        self.down = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(32, 8, 2, stride=2)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.pool2(self.mid(self.pool1(self.stem(x))))
        x = self.up(self.down(x))
        return self.fc(x.mean((2, 3)))


def independent_macs(model, image):
    """mmengine's FlopAnalyzer (one MAC per 'flop' for conv/linear),
    restricted to the layer types the loss counts."""
    by_module = FlopAnalyzer(model, (image, )).by_module()
    return sum(by_module[name] for name, module in model.named_modules()
               if isinstance(module, MAC_LAYER_TYPES))


@pytest.mark.parametrize('ratios', [(0.5, 0.5), (0.7, 1.6),
                                    ((0.4, 1.3), 2.0), (1.5, (0.8, 0.3))])
def test_value_matches_independent_count(ratios):
    model = Net(*ratios)
    loss = GMACsLoss().attach(model)
    images = torch.randn(2, 3, 37, 45)
    model(images)
    value = loss()
    reference = independent_macs(model, images[:1])
    assert value.item() * 1e9 == pytest.approx(reference, rel=0.02)
    assert loss.current_gmacs * 1e9 == pytest.approx(reference, rel=1e-6)


def test_larger_alpha_lowers_the_loss():
    model = Net((0.6, 0.7), 0.8)
    loss = GMACsLoss().attach(model)
    model(torch.randn(1, 3, 32, 32))
    loss().backward()
    for pool in (model.pool1, model.pool2):
        assert torch.all(pool.alpha.grad < 0)


def test_chain_gives_gradient_to_upstream_alpha_through_sizes():
    """pool1 -> pool2 with no MAC layer in between: pool1 only reaches the
    loss through pool2's straight-through size (the spec's chain rule)."""

    class Chain(nn.Module):

        def __init__(self):
            super().__init__()
            self.pool1 = DynOPool(0.6)
            self.pool2 = DynOPool(0.7)
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            return self.conv(self.pool2(self.pool1(x)))

    model = Chain()
    loss = GMACsLoss().attach(model)
    model(torch.randn(1, 3, 40, 40))
    loss().backward()
    assert model.pool1.alpha.grad is not None
    assert torch.all(model.pool1.alpha.grad < 0)
    assert torch.all(model.pool2.alpha.grad < 0)
    # d size2 / d alpha1 = r2 * d size1 / d alpha1: check the magnitude.
    conv_macs_per_pixel = 4 * 3 * 9 / 1e9
    h2, w2 = loss.recorder.pool_sizes['pool2']
    r1, r2 = model.pool1.ratio[0], model.pool2.ratio[0]
    expected = conv_macs_per_pixel * w2.item() * r2 * 40 * (-r1**2)
    assert model.pool1.alpha.grad[0].item() == pytest.approx(
        expected, rel=1e-4)


def test_target_ratio_penalises_only_the_excess():
    model = Net(0.5, 0.5)
    loss = GMACsLoss(loss_weight=2.0, target_ratio=0.8).attach(model)
    model.train()
    loss.train()
    model(torch.randn(1, 3, 32, 32))
    first = loss()
    initial = loss.initial_gmacs.item()
    assert initial == pytest.approx(loss.current_gmacs)
    # At initialisation the model uses 1/0.8 of its budget.
    assert first.item() == pytest.approx(2.0 * (1 / 0.8 - 1), rel=1e-5)
    with torch.no_grad():
        model.pool1.alpha.fill_(1.0)  # r=1: more compute than at init
    model(torch.randn(1, 3, 32, 32))
    value = loss()
    excess = loss.current_gmacs / (0.8 * initial) - 1
    assert excess > 0
    assert value.item() == pytest.approx(2.0 * excess, rel=1e-5)
    value.backward()
    assert torch.all(model.pool1.alpha.grad < 0)


def test_target_gmacs_absolute_budget():
    model = Net(0.5, 0.5)
    loss = GMACsLoss(target_gmacs=1e-5).attach(model)
    model(torch.randn(1, 3, 32, 32))
    assert loss.current_gmacs > 1e-5
    assert loss().item() == pytest.approx(loss.current_gmacs / 1e-5 - 1,
                                          rel=1e-5)
    generous = GMACsLoss(target_gmacs=1.0).attach(model)
    model(torch.randn(1, 3, 32, 32))
    assert generous().item() == 0.0


def test_initial_budget_survives_state_dict():
    model = Net()
    loss = GMACsLoss(target_ratio=0.5).attach(model)
    model(torch.randn(1, 3, 32, 32))
    loss()
    restored = GMACsLoss(target_ratio=0.5)
    restored.load_state_dict(loss.state_dict())
    assert restored.budget_gmacs == pytest.approx(loss.budget_gmacs)


def test_registered_and_validated():
    assert isinstance(MODELS.build(dict(type='GMACsLoss')), GMACsLoss)
    with pytest.raises(ValueError, match='either target_gmacs or '
                       'target_ratio'):
        GMACsLoss(target_gmacs=1.0, target_ratio=0.5)
    with pytest.raises(ValueError, match='target_ratio'):
        GMACsLoss(target_ratio=-1)
    with pytest.raises(ValueError, match='loss_weight'):
        GMACsLoss(loss_weight=-1)
    with pytest.raises(RuntimeError, match='attach'):
        GMACsLoss()()


def test_recorder_can_be_removed():
    model = Net()
    recorder = MACsRecorder(model)
    model(torch.randn(1, 3, 16, 16))
    assert recorder.macs > 0
    recorder.remove()
    model(torch.randn(1, 3, 64, 64))
    assert recorder.macs < 1e7  # still the 16x16 record


def test_start_begins_a_new_record_for_direct_layer_calls():
    model = Net()
    recorder = MACsRecorder(model)
    images = torch.randn(1, 3, 16, 16)
    model(images)
    once = recorder.macs
    recorder.start(images)
    model.forward(images)  # hooks on the layers fire, not the model's own
    assert recorder.macs == once
    model.forward(images)  # without start(): the same record grows
    assert recorder.macs == 2 * once


def test_auxiliary_head_is_not_counted():

    class WithAux(nn.Module):

        def __init__(self):
            super().__init__()
            self.body = Net()
            self.auxiliary_head = nn.Conv2d(3, 64, 3, padding=1)

        def forward(self, x):
            return self.body(x), self.auxiliary_head(x)

    model = WithAux()
    images = torch.randn(1, 3, 16, 16)
    with_aux = MACsRecorder(model, exclude=())
    without_aux = MACsRecorder(model)
    model(images)
    assert with_aux.macs - without_aux.macs == 16 * 16 * 64 * 3 * 9


def test_attached_model_pickles_and_deepcopies():
    import copy
    import pickle
    model = Net()
    loss = GMACsLoss().attach(model)
    model.loss = loss
    model(torch.randn(1, 3, 16, 16))
    loss().backward()  # a record with autograd graphs in it
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        clone(torch.randn(1, 3, 16, 16))
        assert clone.loss.current_gmacs > 0
        assert clone.loss.recorder is not loss.recorder


def test_layers_at_a_fixed_resize_target_get_no_size_gradient():
    """A conv after a functional resize to a fixed size (as the SR tail's
    exact resize) costs the same whatever the DynOPool learned."""
    import torch.nn.functional as F

    class FixedTail(nn.Module):

        def __init__(self):
            super().__init__()
            self.pool = DynOPool(1.7)
            self.tail = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            up = F.interpolate(self.pool(x), size=(40, 40), mode='bilinear')
            return self.tail(up)

    model = FixedTail()
    loss = GMACsLoss().attach(model)
    model(torch.randn(1, 3, 20, 20))
    assert loss.current_gmacs * 1e9 == 40 * 40 * 3 * 3 * 9
    value = loss()
    assert not value.requires_grad or torch.autograd.grad(
        value, model.pool.alpha, allow_unused=True)[0] is None


def test_match_mode_pulls_towards_the_budget_from_both_sides():
    model = Net(0.5, 0.5)
    images = torch.randn(1, 3, 32, 32)
    model(images)
    for target, sign in ((1e-5, -1), (1.0, 1)):  # over / under the budget
        loss = GMACsLoss(loss_weight=3.0, target_gmacs=target,
                         target_mode='match').attach(model)
        model.zero_grad()
        model(images)
        value = loss()
        assert value.item() == pytest.approx(
            3.0 * abs(loss.current_gmacs / target - 1), rel=1e-5)
        value.backward()
        # over budget: a larger alpha (less compute) lowers the loss;
        # under budget: a smaller alpha (more compute) does.
        assert torch.all(torch.sign(model.pool1.alpha.grad) == sign)
    with pytest.raises(ValueError, match='target_mode'):
        GMACsLoss(target_ratio=0.5, target_mode='exactly')
