"""freeze_dynopool / FreezeDynOPoolHook: the frozen model has no alpha and
no straight-through code, and gives the same outputs (hence the same mIoU /
PSNR) as the trained one.

"The same" is bitwise for the torch backend, whose forward is the deploy
form's own arithmetic (interpolate, then pool), so these tests run the
learnable models on it; the fused backends (the C++ kernels that 'auto'
runs on the CPU, Triton) add the same products in another order and agree
with the frozen model within rounding (the last test)."""
import uuid

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import HOOKS
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.evaluation import IoUMetric
from mmseg.structures import SegDataSample
from torch.utils.data import Dataset

from mmdynopool.deploy import (FreezeDynOPoolHook, add_freeze_hook,
                               freeze_dynopool, static_ratios)
from mmdynopool.evaluation.metrics.sr_metrics import prepare, psnr
from mmdynopool.ops import DynOPool, StaticDynOPool
from mmdynopool.ops.functional import BACKEND_ENV, resolve_backend
from tests.conftest import requires_cpu_kernels
from ._models import NUM_CLASSES, ToyNet, build_segmentor, build_sr


def dynopools(model):
    return [m for m in model.modules() if isinstance(m, DynOPool)]


@pytest.fixture(autouse=True)
def torch_backend(monkeypatch):
    """The learnable models run on the torch backend (see the module
    docstring; the last test unsets it)."""
    monkeypatch.setenv(BACKEND_ENV, 'torch')


def test_freeze_in_place_and_on_a_copy():
    model = ToyNet().eval()
    ratios = static_ratios(model)
    x = torch.randn(2, 3, 29, 41)
    expected = model(x)
    frozen = freeze_dynopool(model, inplace=False)
    assert frozen is not model and len(dynopools(model)) == 2
    assert not dynopools(frozen)
    assert isinstance(frozen.pool1, StaticDynOPool)
    assert not any('alpha' in name for name, _ in frozen.named_parameters())
    assert static_ratios(frozen) == ratios
    assert frozen.pool2.aggregation == 'avg' and frozen.pool2.min_size == 3
    assert torch.equal(frozen(x), expected)
    assert freeze_dynopool(model) is model and not dynopools(model)
    assert torch.equal(model(x), expected)
    # a bare layer freezes to its static form
    assert isinstance(freeze_dynopool(DynOPool(0.3)), StaticDynOPool)


@pytest.mark.parametrize('shape', [(16, 16), (33, 21), (7, 9)])
def test_frozen_toynet_matches_at_any_size(shape):
    model = ToyNet().eval()
    with torch.no_grad():
        model.pool1.alpha.mul_(torch.tensor([1.17, 0.86]))
    frozen = freeze_dynopool(model, inplace=False)
    x = torch.randn(1, 3, *shape)
    assert torch.equal(frozen(x), model(x))


def seg_batch(h, w, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, h, w), generator=g).float()
              for _ in range(n)]
    samples = []
    for _ in range(n):
        sample = SegDataSample(
            metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                          pad_shape=(h, w)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, NUM_CLASSES, (1, h, w), generator=g))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def miou(model, batches):
    metric = IoUMetric()
    metric.dataset_meta = dict(classes=[str(i) for i in range(NUM_CLASSES)])
    logits = []
    for batch in batches:
        data = model.data_preprocessor(batch, training=False)
        with torch.no_grad():
            samples = model(**data, mode='predict')
        logits += [s.seg_logits.data for s in samples]
        metric.process(batch, [s.to_dict() for s in samples])
    return metric.compute_metrics(metric.results)['mIoU'], logits


def test_frozen_segmentor_same_logits_and_miou():
    model = build_segmentor()
    frozen = freeze_dynopool(model, inplace=False)
    assert not dynopools(frozen)
    # alpha stays in the state dict (a buffer now): no parameter is left
    assert not any(k.endswith('alpha') for k, _ in frozen.named_parameters())
    assert frozen.state_dict().keys() == model.state_dict().keys()
    batches = [seg_batch(48, 40), seg_batch(37, 53, seed=1)]
    miou_trained, logits_trained = miou(model, batches)
    miou_frozen, logits_frozen = miou(frozen, batches)
    assert miou_frozen == miou_trained
    for a, b in zip(logits_frozen, logits_trained):
        assert torch.equal(a, b)


@requires_cpu_kernels
def test_frozen_segmentor_agrees_with_the_fused_kernels_within_rounding(
        monkeypatch):
    """On the backend 'auto' picks here (the C++ kernels on the CPU), the
    learnable model's logits are the frozen model's within rounding, and
    its mIoU the same."""
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert resolve_backend(torch.zeros(1, 1, 4, 4)) == 'cpu'
    model = build_segmentor()
    frozen = freeze_dynopool(model, inplace=False)
    batches = [seg_batch(48, 40), seg_batch(37, 53, seed=1)]
    miou_trained, logits_trained = miou(model, batches)
    miou_frozen, logits_frozen = miou(frozen, batches)
    assert miou_frozen == miou_trained
    for a, b in zip(logits_frozen, logits_trained):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_frozen_sr_model_same_output_and_psnr():
    model = build_sr()
    frozen = freeze_dynopool(model, inplace=False)
    lr = torch.rand(2, 3, 13, 17)
    hr = torch.rand(2, 3, 52, 68)
    with torch.no_grad():
        out, out_frozen = model(lr), frozen(lr)
    assert torch.equal(out, out_frozen)
    values = [psnr(*prepare(o, gt, 4, 'Y')) for o, gt in
              ((out[0], hr[0]), (out_frozen[0], hr[0]))]
    assert values[0] == values[1] and np.isfinite(values[0])


# -- the hook in a runner -----------------------------------------------------
class Model(BaseModel):

    def __init__(self):
        super().__init__()
        self.net = ToyNet()

    def forward(self, image, mode='tensor'):
        image = torch.stack(image) if isinstance(image, list) else image
        out = self.net(image)
        if mode == 'loss':
            return dict(loss=out.square().mean())
        if mode == 'predict':
            return [dict(out=o) for o in out]
        return out


class Images(Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, index):
        g = torch.Generator().manual_seed(index)
        return dict(image=torch.randn(3, 23, 31, generator=g))


class OutputSum(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results += [float(s['out'].double().sum()) for s in data_samples]

    def compute_metrics(self, results):
        return dict(total=sum(results))


def loader():
    return dict(
        dataset=Images(),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=2,
        collate_fn=dict(type='default_collate'))


def make_runner(work_dir, hooks=(), **kwargs):
    return Runner(
        model=Model(),
        work_dir=str(work_dir),
        custom_hooks=list(hooks),
        default_scope='mmengine',
        experiment_name=f'freeze_{uuid.uuid4().hex}',
        **kwargs)


def trained_checkpoint(path):
    model = Model()
    with torch.no_grad():
        model.net.pool1.alpha.copy_(torch.tensor([1 / 0.43, 1 / 0.71]))
        model.net.pool2.alpha.copy_(torch.tensor([1 / 1.2, 1 / 0.9]))
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return model


@pytest.mark.parametrize('loop', ['test', 'val'])
def test_hook_freezes_after_the_checkpoint_is_loaded(tmp_path, loop):
    ckpt = str(tmp_path / 'trained.pth')
    trained = trained_checkpoint(ckpt)
    metrics = {}
    for freeze in (False, True):
        kwargs = {
            f'{loop}_dataloader': loader(),
            f'{loop}_cfg': dict(),
            f'{loop}_evaluator': Evaluator([OutputSum()])
        }
        runner = make_runner(
            tmp_path / str(freeze),
            hooks=[dict(type='FreezeDynOPoolHook')] if freeze else [],
            load_from=ckpt,
            **kwargs)
        metrics[freeze] = getattr(runner, loop)()
        net = runner.model.net
        if freeze:
            assert isinstance(net.pool1, StaticDynOPool)
            # the checkpoint's learned ratios, not the initial ones
            assert net.pool1.ratio == trained.net.pool1.ratio
            assert net.pool2.ratio == trained.net.pool2.ratio
        else:
            assert isinstance(net.pool1, DynOPool)
    assert metrics[True] == metrics[False]


def test_hook_leaves_a_model_in_training_alone(tmp_path):
    runner = make_runner(
        tmp_path,
        hooks=[dict(type='FreezeDynOPoolHook')],
        train_dataloader=loader(),
        train_cfg=dict(by_epoch=False, max_iters=2, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        val_dataloader=loader(),
        val_cfg=dict(),
        val_evaluator=Evaluator([OutputSum()]))
    runner.train()
    assert len(dynopools(runner.model)) == 2


def test_add_freeze_hook_and_registry():
    assert HOOKS.get('FreezeDynOPoolHook') is FreezeDynOPoolHook
    cfg = Config(dict(custom_hooks=[dict(type='DynOPoolRatioHook')]))
    add_freeze_hook(cfg)
    add_freeze_hook(cfg)  # idempotent
    assert [h['type'] for h in cfg.custom_hooks] == [
        'DynOPoolRatioHook', 'FreezeDynOPoolHook'
    ]
    empty = Config(dict())
    add_freeze_hook(empty)
    assert empty.custom_hooks == [dict(type='FreezeDynOPoolHook')]


def test_frozen_model_trains_at_fixed_resolution():
    """Fine-tuning the weights of a frozen model: gradients reach the
    convolutions; the resolution stays fixed."""
    model = freeze_dynopool(ToyNet())
    x = torch.randn(2, 3, 20, 20)
    model(x).square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert isinstance(model.pool1, nn.Module) and not list(
        model.pool1.parameters())


def test_hook_freezes_after_a_warm_up(tmp_path):
    runner = make_runner(
        tmp_path,
        hooks=[dict(type='FreezeDynOPoolHook', freeze_at_iter=2)],
        train_dataloader=loader(),
        train_cfg=dict(by_epoch=False, max_iters=4),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)))
    alphas = []

    class Watch(Hook):

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            net = runner.model.net
            alphas.append(isinstance(net.pool1, DynOPool))

    runner.register_hook(Watch(), priority='LOWEST')
    runner.train()
    # learnable during the warm-up, frozen at the learned ratio after it
    assert alphas == [True, False, False, False]
    assert isinstance(runner.model.net.pool1, StaticDynOPool)
    assert runner.model.net.pool1.ratio != (0.37, 0.61)
    with pytest.raises(ValueError, match='freeze_at_iter'):
        FreezeDynOPoolHook(freeze_at_iter=-1)


def test_checkpoints_move_between_learnable_and_frozen_models():
    """A frozen model's state dict holds the learned alpha under the
    DynOPool's key: it loads (strictly) into a fresh learnable model, which
    then computes the frozen model's outputs; a learnable model's state dict
    sets a frozen model's ratios."""

    def static_ratios(model):
        return [m.ratio for m in model.modules()
                if isinstance(m, StaticDynOPool)]

    trained = build_segmentor()
    frozen = freeze_dynopool(trained, inplace=False)
    fresh = build_segmentor()
    with torch.no_grad():
        for layer in dynopools(fresh):
            layer.alpha.fill_(2.0)  # as initialised: r = 0.5
    fresh.load_state_dict(frozen.state_dict())
    assert [m.ratio for m in dynopools(fresh)] == \
        static_ratios(frozen)
    batches = [seg_batch(48, 40)]
    logits = miou(trained, batches)[1][0]
    assert torch.equal(miou(fresh, batches)[1][0], logits)
    other = build_segmentor()
    with torch.no_grad():
        for layer in dynopools(other):
            layer.alpha.fill_(2.0)
    other = freeze_dynopool(other)
    assert static_ratios(other) != static_ratios(frozen)
    other.load_state_dict(trained.state_dict())
    assert static_ratios(other) == static_ratios(frozen)
    assert torch.equal(miou(other, batches)[1][0], logits)
