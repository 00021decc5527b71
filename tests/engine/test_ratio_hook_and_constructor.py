"""DynOPoolRatioHook and DynOPoolOptimWrapperConstructor in a real runner."""
import glob
import json
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.registry import HOOKS, OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmdynopool import DynOPool
from mmdynopool.engine import (DynOPoolOptimWrapperConstructor,
                               DynOPoolRatioHook, alpha_parameter_names)


class TwoStage(BaseModel):

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = DynOPool(0.5)
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1),
                                  DynOPool((0.5, 0.6)))
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, image, mode='tensor'):
        image = torch.stack(image) if isinstance(image, list) else image
        out = self.head(self.body(self.pool(self.stem(image))))
        return {'loss': out.mean()} if mode == 'loss' else out


class Images(Dataset):

    def __len__(self):
        return 16

    def __getitem__(self, index):
        return dict(image=torch.randn(3, 32, 32))


def make_runner(work_dir, max_iters=6, interval=2, **kwargs):
    return Runner(
        model=TwoStage(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=Images(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.01, weight_decay=0.01),
            constructor='DynOPoolOptimWrapperConstructor',
            paramwise_cfg=dict(alpha_lr_mult=5.0)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        custom_hooks=[dict(type='DynOPoolRatioHook', interval=interval)],
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=3,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=2)),
        visualizer=dict(
            type='Visualizer',
            vis_backends=[dict(type='LocalVisBackend'),
                          dict(type='TensorboardVisBackend')]),
        **kwargs)


def test_ratio_log_json_text_and_tensorboard(tmp_path):
    runner = make_runner(tmp_path)
    runner.train()
    records = json.load(open(tmp_path / 'dynopool_ratios.json'))
    assert [r['iter'] for r in records] == [2, 4, 6]
    layer = records[-1]['layers']['pool']
    assert set(layer) == {'r_h', 'r_w', 'h', 'w', 'in_h', 'in_w'}
    # Sizes and ratios of the forward they were recorded in (input 32x32).
    assert (layer['in_h'], layer['in_w']) == (32, 32)
    assert layer['h'] == int(layer['r_h'] * 32 + 0.5)
    assert layer['w'] == int(layer['r_w'] * 32 + 0.5)
    assert layer['r_w'] == pytest.approx(runner.model.pool.ratio[1],
                                         rel=0.05)
    assert set(records[-1]['layers']) == {'pool', 'body.1'}
    assert records[-1]['gmacs'] > 0
    assert records[0]['layers']['pool']['r_h'] != layer['r_h']
    log_file = glob.glob(str(tmp_path / '*' / '*.log'))[0]
    assert 'DynOPool iter 6: gmacs:' in open(log_file).read()
    scalars = glob.glob(str(tmp_path / '*' / 'vis_data' / 'scalars.json'))
    assert 'dynopool/body.1/r_h' in open(scalars[0]).read()
    assert glob.glob(str(tmp_path / '*' / 'vis_data' / 'events.out.*'))


def test_resumed_run_continues_sizes_and_log(tmp_path):
    make_runner(tmp_path, max_iters=3).train()
    saved = torch.load(tmp_path / 'iter_3.pth')['state_dict']
    resumed = make_runner(tmp_path, max_iters=6, resume=True)
    resumed.train()
    records = json.load(open(tmp_path / 'dynopool_ratios.json'))
    assert [r['iter'] for r in records] == [2, 3, 4, 6]
    # The resumed run's first forward used exactly the checkpoint's alpha.
    assert records[2]['layers']['pool']['r_h'] == pytest.approx(
        1 / saved['pool.alpha'][0].item(), rel=1e-6)


def test_constructor_gives_alpha_no_decay_and_its_lr():
    model = TwoStage()
    constructor = DynOPoolOptimWrapperConstructor(
        dict(optimizer=dict(type='SGD', lr=0.1, weight_decay=0.01)),
        dict(alpha_lr_mult=5.0))
    optim = constructor(model).optimizer
    alpha_ids = {id(model.pool.alpha), id(model.body[1].alpha)}
    for group in optim.param_groups:
        ids = {id(p) for p in group['params']}
        if ids & alpha_ids:
            assert group['weight_decay'] == 0
            assert group['lr'] == pytest.approx(0.5)
        else:
            assert group['weight_decay'] == pytest.approx(0.01)
            assert group['lr'] == pytest.approx(0.1)
    assert alpha_parameter_names(model) == ['pool.alpha', 'body.1.alpha']
    assert OPTIM_WRAPPER_CONSTRUCTORS.get('DynOPoolOptimWrapperConstructor')


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match='alpha_lr_mult'):
        DynOPoolOptimWrapperConstructor(
            dict(optimizer=dict(type='SGD', lr=0.1)),
            dict(alpha_lr_mult=-1))
    with pytest.raises(ValueError, match='interval'):
        DynOPoolRatioHook(interval=0)
    assert HOOKS.get('DynOPoolRatioHook') is DynOPoolRatioHook
