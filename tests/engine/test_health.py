"""DynOPoolHealthHook: warnings on degenerate ratios, a clear stop on
divergence (before the optimiser step writes nan into the weights)."""
import glob
import os.path as osp
import re
import uuid

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.registry import HOOKS
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmdynopool import DynOPool
from mmdynopool.engine import DynOPoolDivergenceError, DynOPoolHealthHook


class Net(BaseModel):
    """conv -> DynOPool -> conv -> DynOPool -> conv, with switchable faults
    at a given training forward (1-based)."""

    def __init__(self,
                 pool=None,
                 pool2=None,
                 nan_loss_at=None,
                 inf_grad_at=None,
                 nan_gmacs_at=None):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = DynOPool(**(pool or dict(init_ratio=0.5)))
        self.mid = nn.Conv2d(4, 4, 3, padding=1)
        self.pool2 = DynOPool(**(pool2 or dict(init_ratio=0.5)))
        self.head = nn.Conv2d(4, 1, 1)
        self.faults = dict(
            nan_loss=nan_loss_at, inf_grad=inf_grad_at, nan_gmacs=nan_gmacs_at)
        self.calls = 0

    def forward(self, image, mode='tensor'):
        image = torch.stack(image) if isinstance(image, list) else image
        out = self.head(self.pool2(self.mid(self.pool(self.stem(image)))))
        if mode != 'loss':
            return out
        self.calls += 1
        losses = dict(loss_task=out.square().mean(), acc=torch.tensor(1.0))
        if self.calls == self.faults['nan_loss']:
            losses['loss_task'] = losses['loss_task'] * float('nan')
        if self.calls == self.faults['inf_grad']:
            # value 0, gradient d sqrt(x)/dx at 0 = inf for pool.alpha only
            alpha = self.pool.alpha[1]
            losses['loss_aux'] = torch.sqrt(alpha - alpha.detach())
        if self.calls == self.faults['nan_gmacs']:
            losses['loss_gmacs'] = torch.tensor(float('inf'))
        return losses


class Images(Dataset):

    def __init__(self, size=16):
        self.size = size

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return dict(image=torch.randn(3, self.size, self.size))


def make_runner(work_dir, model, max_iters=4, lr=0.01, size=16, **hook):
    hook = dict(type='DynOPoolHealthHook', **hook)
    return Runner(
        model=model,
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=Images(size),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=lr),
            constructor='DynOPoolOptimWrapperConstructor'),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        custom_hooks=[hook],
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        default_scope='mmengine',
        # unique: runners built within one second would share a logger
        experiment_name=f'health_{uuid.uuid4().hex}')


def health_hook(runner) -> DynOPoolHealthHook:
    return next(h for h in runner.hooks if isinstance(h, DynOPoolHealthHook))


def log_text(work_dir) -> str:
    return open(glob.glob(osp.join(str(work_dir), '*', '*.log'))[0]).read()


def all_finite(model) -> bool:
    return all(torch.isfinite(p).all() for p in model.parameters())


def test_healthy_run_has_no_events(tmp_path):
    runner = make_runner(tmp_path, Net())
    runner.train()
    hook = health_hook(runner)
    assert hook.events == []
    assert hook._handles == []  # hooks removed after training
    assert 'DynOPoolHealthHook: ' not in log_text(tmp_path)


def test_nan_loss_stops_before_backward_naming_the_loss(tmp_path):
    model = Net(nan_loss_at=3)
    runner = make_runner(tmp_path, model)
    with pytest.raises(DynOPoolDivergenceError) as info:
        runner.train()
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert "'loss_task' is nan" in message
    assert 'iteration 3' in message
    assert 'alpha_lr_mult' in message and 'loss_weight' in message
    # the layers, by name, with their ratios and sizes in that forward
    assert re.search(r'pool: r=\(0\.\d+, 0\.\d+\) -> 8x8; pool2: r=\(0\.\d+, '
                     r'0\.\d+\) -> 4x4', message)
    # Stopped before backward / the step: the weights are intact, and no
    # checkpoint of the failing iteration was written.
    assert all_finite(model)
    assert osp.exists(tmp_path / 'iter_2.pth')
    assert not osp.exists(tmp_path / 'iter_3.pth')
    assert health_hook(runner).events[-1][1:3] == ('loss', 'loss_task')


def test_inf_budget_loss_names_the_budget_loss(tmp_path):
    runner = make_runner(tmp_path, Net(nan_gmacs_at=2))
    with pytest.raises(RuntimeError, match="'loss_gmacs' is inf.*GMACsLoss"):
        runner.train()


def test_nonfinite_alpha_grad_stops_before_the_step_naming_the_layer(
        tmp_path):
    model = Net(inf_grad_at=2)
    runner = make_runner(tmp_path, model)
    with pytest.raises(DynOPoolDivergenceError) as info:
        runner.train()
    message = str(info.value)
    assert 'gradient of pool.alpha (w axis, 1/r_w) is inf' in message
    assert 'before the optimiser step' in message
    assert all_finite(model)  # the step did not run


def test_nonfinite_alpha_at_start_is_named(tmp_path):
    model = Net()
    with torch.no_grad():
        model.pool2.alpha[0] = float('nan')
    runner = make_runner(tmp_path, model)
    with pytest.raises(DynOPoolDivergenceError,
                       match=r'pool2\.alpha \(h axis, 1/r_h\) is nan'):
        runner.train()


def test_warn_only_mode_keeps_training(tmp_path):
    runner = make_runner(
        tmp_path, Net(nan_gmacs_at=2), stop_on_nonfinite=False)
    runner.train()
    assert ('loss', 'loss_gmacs') in [e[1:3] for e in
                                      health_hook(runner).events]
    assert "'loss_gmacs' is inf" in log_text(tmp_path)


def test_ratio_pinned_at_a_bound_warns_with_layer_and_value(tmp_path):
    # Starts at the upper bound; a tiny lr keeps it there.
    model = Net(pool=dict(init_ratio=(0.5, 2.0), ratio_range=(0.25, 2.0)))
    runner = make_runner(tmp_path, model, max_iters=4, lr=1e-7, patience=3)
    runner.train()
    events = health_hook(runner).events
    bound = [e for e in events if e[1] == 'bound']
    assert len(bound) == 1  # once per episode, after `patience` iterations
    iteration, _, layer, value = bound[0]
    assert (iteration, layer) == (2, 'pool')
    assert value == pytest.approx(2.0, rel=1e-3)
    text = log_text(tmp_path)
    assert 'pool r_w=2 is pinned at the upper bound 2 of ratio_range' in text
    assert 'raise GMACsLoss loss_weight' in text


def test_ratio_pinned_at_the_lower_bound_warns(tmp_path):
    model = Net(pool=dict(init_ratio=0.25, ratio_range=(0.25, 2.0)))
    runner = make_runner(tmp_path, model, max_iters=2, lr=0.0, patience=1)
    runner.train()
    hook = health_hook(runner)
    assert {(e[1], e[2]) for e in hook.events} == {('bound', 'pool')}
    assert len(hook.events) == 2  # h and w axes, once each
    assert 'lower bound 0.25' in log_text(tmp_path)
    assert 'lower GMACsLoss loss_weight' in log_text(tmp_path)


def test_stage_collapsing_to_min_size_warns(tmp_path):
    # 16 -> pool (0.5) -> 8 -> pool2 (r=0.05, min_size=2): round(0.4) = 0
    # is held at min_size=2 along both axes.
    model = Net(pool2=dict(init_ratio=0.05, min_size=2,
                           ratio_range=(0.01, 4)))
    runner = make_runner(tmp_path, model, max_iters=3, lr=0.0)
    runner.train()
    collapse = [e for e in health_hook(runner).events if e[1] == 'collapse']
    assert [(e[2], e[3]) for e in collapse] == [('pool2', 2), ('pool2', 2)]
    text = log_text(tmp_path)
    assert 'pool2 collapsed along height: output h = 2 (min_size=2) from ' \
        'input 8 at r_h=0.05' in text
    assert 'cannot grow again' in text


def test_collapse_to_one_pixel_warns(tmp_path):
    model = Net(pool2=dict(init_ratio=(0.5, 0.02), ratio_range=(0.01, 4)))
    runner = make_runner(tmp_path, model, max_iters=1, lr=0.0)
    runner.train()
    collapse = [e for e in health_hook(runner).events if e[1] == 'collapse']
    assert [(e[2], e[3]) for e in collapse] == [('pool2', 1)]


def test_registered_and_bad_settings():
    assert HOOKS.get('DynOPoolHealthHook') is DynOPoolHealthHook
    for kwargs in (dict(interval=0), dict(patience=0), dict(bound_rtol=1)):
        with pytest.raises(ValueError):
            DynOPoolHealthHook(**kwargs)
