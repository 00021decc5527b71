"""The ratio-search options of configs/demo/STUDY.md: DynOPoolFixedAreaHook
(learn the aspect at a held area), DynOPoolSetRatiosHook (hand-set shapes;
search, then retrain) and the constructor's alpha_optim_cfg (an EMA of
alpha's gradient), each in a real runner on tiny inputs."""
import json

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import Runner

from mmdynopool import DynOPool
from mmdynopool.engine import (DynOPoolFixedAreaHook,
                               DynOPoolOptimWrapperConstructor,
                               DynOPoolSetRatiosHook)
from mmdynopool.engine.hooks.fixed_area_hook import project_area
from mmdynopool.engine.hooks.set_ratios_hook import mean_ratios
from mmdynopool.ops import StaticDynOPool
from .test_ratio_hook_and_constructor import Images, TwoStage


class Skewed(TwoStage):
    """TwoStage whose loss rewards a tall, narrow first pool: the task
    gradient moves alpha_h and alpha_w apart."""

    def forward(self, image, mode='tensor'):
        image = torch.stack(image) if isinstance(image, list) else image
        x = self.pool(self.stem(image))
        out = self.head(self.body(x))
        if mode != 'loss':
            return out
        # d/d alpha_w of mean(pool output) is not that of alpha_h: a
        # gradient along width only (the pool's output is cropped to rows)
        return {'loss': out.mean() + 10 * x[:, :, :4].abs().mean()}


class NoisyGrad(TwoStage):
    """TwoStage whose loss flips sign with the batch: alpha's gradient is
    pure batch-to-batch noise."""

    def forward(self, image, mode='tensor'):
        image = torch.stack(image) if isinstance(image, list) else image
        out = super().forward(image)
        if mode != 'loss':
            return out
        return {'loss': out.mean() * image.mean().sign()}


def runner_for(work_dir, hooks, max_iters=6, model=None, lr=0.05,
               optimizer='SGD', paramwise=None):
    return Runner(
        model=model or Skewed(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=Images(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(
            optimizer=dict(type=optimizer, lr=lr),
            constructor='DynOPoolOptimWrapperConstructor',
            paramwise_cfg=paramwise or dict(alpha_lr_mult=1.0)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        custom_hooks=hooks,
        randomness=dict(seed=0),
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', interval=max_iters, by_epoch=False)))


def output_area(layer, h, w):
    out_h, out_w = layer.output_size(h, w)
    return out_h * out_w


# -- DynOPoolFixedAreaHook ---------------------------------------------------
def test_project_area_keeps_the_aspect_and_stays_at_most_the_area():
    layer = DynOPool((0.6, 0.3))  # aspect r_h / r_w = 2
    out_h, out_w = project_area(layer, 40, 40, 400.0)
    r_h, r_w = layer.ratio
    assert out_h * out_w <= 400
    assert (out_h, out_w) == layer.output_size(40, 40)
    assert r_h / r_w == pytest.approx(2.0, rel=1e-5)
    # as close as the rounding allows: the continuous area barely below
    assert r_h * 40 * r_w * 40 == pytest.approx(400, rel=0.03)
    # a ratio at its bound: the other axis takes the area
    bounded = DynOPool((0.9, 0.1), ratio_range=(0.05, 1.0))
    project_area(bounded, 40, 40, 1400.0)
    r_h, r_w = bounded.ratio
    assert r_h == pytest.approx(1.0)
    assert output_area(bounded, 40, 40) <= 1400
    assert r_w * 40 * 40 == pytest.approx(1400, rel=0.03)


def test_fixed_area_hook_learns_aspect_at_the_initial_area(tmp_path):
    free = runner_for(tmp_path / 'free', hooks=[], lr=0.1, max_iters=10)
    free.train()
    held = runner_for(tmp_path / 'held', lr=0.1, max_iters=10,
                      hooks=[dict(type='DynOPoolFixedAreaHook')])
    held.train()
    # without the hook, the task gradient changes the area of pool
    # (the control: the assertions below could fail)
    assert output_area(free.model.pool, 32, 32) > 16 * 16
    for model, shape, initial in ((held.model.pool, (32, 32), 16 * 16),
                                  (held.model.body[1], (16, 16), 8 * 10)):
        # at most the initial area, and as close as the rounding allows
        assert 0.88 * initial <= output_area(model, *shape) <= initial
    # and the aspect did move
    r_h, r_w = held.model.pool.ratio
    assert abs(r_h / r_w - 1) > 0.05


def test_fixed_area_hook_on_named_layers_only(tmp_path):
    runner = runner_for(
        tmp_path, hooks=[dict(type='DynOPoolFixedAreaHook', layers=['pool'])])
    runner.train()
    assert output_area(runner.model.pool, 32, 32) <= 16 * 16
    with pytest.raises(ValueError, match='no DynOPool named'):
        runner_for(tmp_path / 'bad', hooks=[
            dict(type='DynOPoolFixedAreaHook', layers=['pool9'])
        ]).train()
    with pytest.raises(ValueError, match='area_scale'):
        DynOPoolFixedAreaHook(area_scale=0)
    with pytest.raises(ValueError, match='layers'):
        DynOPoolFixedAreaHook(layers='pool')
    assert HOOKS.get('DynOPoolFixedAreaHook') is DynOPoolFixedAreaHook


# -- DynOPoolSetRatiosHook ---------------------------------------------------
def test_set_ratios_then_freeze_trains_at_the_hand_set_shape(tmp_path):
    runner = runner_for(tmp_path, hooks=[
        dict(type='DynOPoolSetRatiosHook', ratios=dict(pool=(0.25, 1.0))),
        dict(type='FreezeDynOPoolHook', freeze_at_iter=0)
    ], max_iters=2)
    runner.train()
    pool = runner.model.pool
    assert isinstance(pool, StaticDynOPool)
    assert pool.ratio == pytest.approx((0.25, 1.0))
    assert runner.model.body[1].ratio == pytest.approx((0.5, 0.6))


def test_search_then_retrain_takes_ratios_not_weights(tmp_path):
    search = runner_for(tmp_path / 'search',
                        hooks=[dict(type='DynOPoolRatioHook', interval=1)])
    search.train()
    records = json.load(open(tmp_path / 'search' / 'dynopool_ratios.json'))
    learned = records[-1]['layers']
    assert learned['pool']['r_h'] != pytest.approx(0.5)  # it did learn
    for source in (str(tmp_path / 'search'),
                   str(tmp_path / 'search' / 'iter_6.pth')):
        retrain = runner_for(tmp_path / 'retrain', hooks=[
            dict(type='DynOPoolSetRatiosHook', source=source)
        ], max_iters=1, lr=0.0)
        retrain.train()
        for name, layer in (('pool', retrain.model.pool),
                            ('body.1', retrain.model.body[1])):
            if source.endswith('.pth'):
                expected = search.model.get_submodule(name).ratio
            else:
                expected = (learned[name]['r_h'], learned[name]['r_w'])
            assert layer.ratio == pytest.approx(expected, rel=1e-5)
        # weights from scratch, not the search run's
        assert not torch.equal(retrain.model.stem.weight,
                               search.model.stem.weight)


def write_search(path, ratios, sizes=None):
    """A search run's work dir holding only its ``dynopool_ratios.json``
    (with output sizes ``{layer: (h, w)}`` when given)."""
    path.mkdir(parents=True)
    layers = {
        name: {'r_h': r_h, 'r_w': r_w}
        for name, (r_h, r_w) in ratios.items()
    }
    for name, (h, w) in (sizes or {}).items():
        layers[name].update(h=h, w=w)
    (path / 'dynopool_ratios.json').write_text(
        json.dumps([{'iter': 6, 'layers': layers}]))
    return str(path)


def test_set_ratios_from_several_searches_takes_their_geometric_mean(
        tmp_path):
    a = write_search(tmp_path / 'a', {'pool': (0.4, 0.625),
                                      'body.1': (0.5, 0.5)})
    b = write_search(tmp_path / 'b', {'pool': (0.25, 1.0),
                                      'body.1': (0.8, 0.3125)})
    runner = runner_for(tmp_path / 'retrain', hooks=[
        dict(type='DynOPoolSetRatiosHook', source=[a, b], hold_area=False)
    ], max_iters=1, lr=0.0)
    runner.train()
    # sqrt(0.4 * 0.25), sqrt(0.625 * 1.0): the area r_h * r_w = 0.25 that
    # both searches kept is kept by their mean
    r_h, r_w = runner.model.pool.ratio
    assert (r_h, r_w) == pytest.approx((0.1**0.5, 0.625**0.5), rel=1e-5)
    assert r_h * r_w == pytest.approx(0.25, rel=1e-5)
    assert runner.model.body[1].ratio == pytest.approx(
        (0.4**0.5, 0.15625**0.5), rel=1e-5)
    # one source in a list is that source
    single = runner_for(tmp_path / 'single', hooks=[
        dict(type='DynOPoolSetRatiosHook', source=[b], hold_area=False)
    ], max_iters=1, lr=0.0)
    single.train()
    assert single.model.pool.ratio == pytest.approx((0.25, 1.0), rel=1e-5)


def test_averaged_ratios_hold_at_most_the_searches_output_area(
        tmp_path, caplog):
    # 32x32 images: pool's input is 32x32; body.1's is pool's output
    a = write_search(tmp_path / 'a', {'pool': (0.4, 0.625),
                                      'body.1': (0.5, 0.6)},
                     sizes={'pool': (12, 20), 'body.1': (6, 12)})
    b = write_search(tmp_path / 'b', {'pool': (0.45, 0.55),
                                      'body.1': (0.5, 0.6)},
                     sizes={'pool': (14, 18), 'body.1': (7, 11)})
    # the plain mean rounds to 14 x 19 = 266 pixels at pool, more than
    # either search's (240, 252): it is held at the costlier one's 252
    mean = mean_ratios([a, b])['pool']
    assert round(32 * mean[0]) * round(32 * mean[1]) == 266
    runner = runner_for(tmp_path / 'retrain', hooks=[
        dict(type='DynOPoolSetRatiosHook', source=[a, b]),
        dict(type='FreezeDynOPoolHook', freeze_at_iter=0)
    ], max_iters=1, lr=0.0)
    runner.train()
    pool = runner.model.pool
    out_h, out_w = pool.output_size(32, 32)
    assert 240 < out_h * out_w <= 252
    # the aspect of the mean is kept
    assert pool.ratio[0] / pool.ratio[1] == pytest.approx(
        mean[0] / mean[1], rel=1e-4)
    body_h, body_w = runner.model.body[1].output_size(out_h, out_w)
    assert body_h * body_w <= 77  # max(6 * 12, 7 * 11)
    log = open(runner.logger.log_file).read()
    assert 'held at most the searches\' output area: pool ' in log
    # hold_area=False sets the plain mean
    plain = runner_for(tmp_path / 'plain', hooks=[
        dict(type='DynOPoolSetRatiosHook', source=[a, b], hold_area=False)
    ], max_iters=1, lr=0.0)
    plain.train()
    assert plain.model.pool.ratio == pytest.approx(mean, rel=1e-5)


def test_snap_pixels_keeps_the_start_where_a_search_moved_a_pixel(
        tmp_path):
    # pool's input 32x32 (start 0.5 -> 16x16); body.1's 16x16 (start
    # (0.5, 0.6) -> 8x10)
    def search(path, pool, body):
        write_search(path, {'pool': pool, 'body.1': body})
        records = json.loads((path / 'dynopool_ratios.json').read_text())
        for name, in_size in (('pool', 16 * 2), ('body.1', 16)):
            r_h, r_w = records[0]['layers'][name]['r_h'], records[0][
                'layers'][name]['r_w']
            records[0]['layers'][name].update(
                in_h=in_size, in_w=in_size, h=round(r_h * in_size),
                w=round(r_w * in_size))
        (path / 'dynopool_ratios.json').write_text(json.dumps(records))
        return str(path)

    # pool: 17x15 (0.53 * 32 = 16.96, 0.47 * 32 = 15.04) against 16x16,
    # one pixel each; body.1: 10x8 against 8x10, two
    a = search(tmp_path / 'a', (0.53, 0.47), (0.6, 0.5))
    runner = runner_for(tmp_path / 'retrain', hooks=[
        dict(type='DynOPoolSetRatiosHook', source=a, snap_pixels=1)
    ], max_iters=1, lr=0.0)
    runner.train()
    assert runner.model.pool.ratio == pytest.approx((0.5, 0.5))
    assert runner.model.body[1].ratio == pytest.approx((0.6, 0.5), rel=1e-5)
    log = open(runner.logger.log_file).read()
    assert 'kept the start ratio (learned within 1 px of it): pool' in log
    # averaged: a layer snaps only where every search stayed within
    b = search(tmp_path / 'b', (0.6, 0.4167), (0.55, 0.5455))
    both = runner_for(tmp_path / 'both', hooks=[
        dict(type='DynOPoolSetRatiosHook', source=[a, b], snap_pixels=1,
             hold_area=False)
    ], max_iters=1, lr=0.0)
    both.train()
    assert both.model.pool.ratio == pytest.approx(
        ((0.53 * 0.6)**0.5, (0.47 * 0.4167)**0.5), rel=1e-4)
    # a layer after one that moved keeps its learned ratio, even within
    # the pixel: its input is not the start's any more
    c = search(tmp_path / 'c', (0.6, 0.4167), (0.53, 0.6))
    after = runner_for(tmp_path / 'after', hooks=[
        dict(type='DynOPoolSetRatiosHook', source=c, snap_pixels=1)
    ], max_iters=1, lr=0.0)
    after.train()
    assert after.model.body[1].ratio == pytest.approx((0.53, 0.6), rel=1e-5)
    with pytest.raises(ValueError, match='snap_pixels must be'):
        DynOPoolSetRatiosHook(source=a, snap_pixels=-1)
    with pytest.raises(ValueError, match='needs a source'):
        DynOPoolSetRatiosHook(ratios=dict(pool=0.5), snap_pixels=1)


def test_kept_random_state_restores_every_generator():
    import random

    import numpy as np
    from mmdynopool.engine.hooks.set_ratios_hook import kept_random_state
    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    with kept_random_state():
        inside = (torch.rand(2), random.random(), np.random.rand())
    after = (torch.rand(2), random.random(), np.random.rand())
    assert torch.equal(inside[0], after[0])
    assert inside[1:] == after[1:]


def test_set_ratios_errors_are_named(tmp_path):
    with pytest.raises(ValueError, match='either ratios or source'):
        DynOPoolSetRatiosHook()
    with pytest.raises(ValueError, match='ratio of'):
        DynOPoolSetRatiosHook(ratios=dict(pool=(0.5, -1)))
    with pytest.raises(ValueError, match=r"no DynOPool named \['pool7'\]"):
        runner_for(tmp_path / 'a', hooks=[
            dict(type='DynOPoolSetRatiosHook', ratios=dict(pool7=0.5))
        ], max_iters=1).train()
    with pytest.raises(ValueError, match='outside its ratio_range'):
        runner_for(tmp_path / 'b', hooks=[
            dict(type='DynOPoolSetRatiosHook', ratios=dict(pool=9.0))
        ], max_iters=1).train()
    path = tmp_path / 'one.json'
    path.write_text(json.dumps([{'iter': 1, 'layers': {
        'pool': {'r_h': 0.4, 'r_w': 0.6}}}]))
    with pytest.raises(ValueError, match='no ratio for body.1'):
        runner_for(tmp_path / 'c', hooks=[
            dict(type='DynOPoolSetRatiosHook', source=str(path))
        ], max_iters=1).train()
    with pytest.raises(FileNotFoundError, match='no such file'):
        runner_for(tmp_path / 'd', hooks=[
            dict(type='DynOPoolSetRatiosHook', source=str(tmp_path / 'x'))
        ], max_iters=1).train()
    with pytest.raises(ValueError, match='non-empty list of paths'):
        DynOPoolSetRatiosHook(source=[])
    other = write_search(tmp_path / 'other', {'pool': (0.4, 0.6),
                                              'body.1': (0.5, 0.5)})
    with pytest.raises(ValueError, match='has no recorded sizes'):
        runner_for(tmp_path / 'f', hooks=[
            dict(type='DynOPoolSetRatiosHook', source=[other, other])
        ], max_iters=1).train()
    checkpoint = tmp_path / 'search.pth'
    torch.save({'state_dict': {'pool.alpha': torch.tensor([2.0, 2.0]),
                               'body.1.alpha': torch.tensor([2.0, 2.0])}},
               str(checkpoint))
    with pytest.raises(ValueError,
                       match='snap_pixels needs the sizes.*no recorded'):
        runner_for(tmp_path / 'g', hooks=[
            dict(type='DynOPoolSetRatiosHook', source=str(checkpoint),
                 snap_pixels=1)
        ], max_iters=1).train()
    with pytest.raises(ValueError, match='name different DynOPools'):
        runner_for(tmp_path / 'e', hooks=[
            dict(type='DynOPoolSetRatiosHook', source=[other, str(path)])
        ], max_iters=1).train()


# -- alpha_optim_cfg ---------------------------------------------------------
def test_alpha_optim_cfg_sets_alpha_group_only():
    model = TwoStage()
    constructor = DynOPoolOptimWrapperConstructor(
        dict(optimizer=dict(type='AdamW', lr=0.1, weight_decay=0.01)),
        dict(alpha_lr_mult=3.0, alpha_optim_cfg=dict(betas=(0.99, 0.999))))
    optim = constructor(model).optimizer
    alpha_ids = {id(model.pool.alpha), id(model.body[1].alpha)}
    seen = 0
    for group in optim.param_groups:
        if {id(p) for p in group['params']} & alpha_ids:
            seen += 1
            assert group['betas'] == (0.99, 0.999)
            assert group['lr'] == pytest.approx(0.3)
            assert group['weight_decay'] == 0
        else:
            assert group['betas'] == (0.9, 0.999)
    assert seen == 2
    with pytest.raises(ValueError, match='alpha_optim_cfg'):
        DynOPoolOptimWrapperConstructor(
            dict(optimizer=dict(type='AdamW', lr=0.1)),
            dict(alpha_optim_cfg=dict(lr=1.0)))


def test_alpha_ema_smooths_alpha_steps(tmp_path):
    """With beta1 = 0.99 alpha's first moment averages over ~100 steps:
    on noisy gradients (random images) alpha's steps turn direction
    less often than with beta1 = 0.9."""

    def sign_changes(beta1):
        torch.manual_seed(0)
        runner = runner_for(
            tmp_path / str(beta1), hooks=[], max_iters=40, model=NoisyGrad(),
            lr=0.01, optimizer='Adam',
            paramwise=dict(alpha_lr_mult=1.0,
                           alpha_optim_cfg=dict(betas=(beta1, 0.999))))
        values = []

        class Track(Hook):

            def after_train_iter(self, runner, batch_idx, data_batch=None,
                                 outputs=None):
                values.append(float(runner.model.pool.alpha[0]))

        runner.register_hook(Track())
        runner.train()
        steps = torch.tensor(values).diff()
        return int((steps[1:].sign() != steps[:-1].sign()).sum())

    assert sign_changes(0.99) < sign_changes(0.9)


def test_project_area_max_aspect():
    layer = DynOPool((0.9, 0.1), ratio_range=(0.05, 2.0))  # aspect 9
    project_area(layer, 40, 40, 400.0, max_aspect=4.0)
    r_h, r_w = layer.ratio
    assert r_h / r_w == pytest.approx(4.0, rel=1e-5)
    assert output_area(layer, 40, 40) <= 400
    assert r_h * r_w * 1600 == pytest.approx(400, rel=0.03)
    with pytest.raises(ValueError, match='max_aspect'):
        DynOPoolFixedAreaHook(max_aspect=0.5)


# -- DynOPoolRatioWarmupHook -------------------------------------------------
class TrackAlpha(Hook):
    """Keeps the model's ``pool.alpha`` after every training iteration."""
    priority = 'LOWEST'

    def __init__(self):
        self.seen = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.seen.append(runner.model.pool.alpha.detach().clone())


def test_ratio_warmup_holds_alpha_then_lets_it_learn(tmp_path):
    runner = runner_for(tmp_path, hooks=[
        dict(type='DynOPoolRatioWarmupHook', begin_iter=3)
    ], max_iters=6, lr=0.05, optimizer='Adam')
    track = TrackAlpha()
    runner.register_hook(track)
    seen = track.seen
    start = runner.model.pool.alpha.detach().clone()
    stem = runner.model.stem.weight.detach().clone()
    runner.train()
    for alpha in seen[:3]:  # iterations 0, 1, 2: held
        assert torch.equal(alpha, start)
    assert not torch.equal(seen[-1], start)  # then it learns
    # the weights learned all along
    assert not torch.equal(runner.model.stem.weight, stem)
    with pytest.raises(ValueError, match='begin_iter'):
        HOOKS.build(dict(type='DynOPoolRatioWarmupHook', begin_iter=-1))
    with pytest.raises(TypeError, match='warm_moments'):
        HOOKS.build(dict(type='DynOPoolRatioWarmupHook', warm_moments=1))


@pytest.mark.parametrize('warm_moments', [False, True])
def test_ratio_warmup_warms_adam_moments_only_when_asked(
        tmp_path, warm_moments):
    """warm_moments=True: Adam's moments of alpha count the warm-up's
    gradients while alpha stays put; the first free step is then shorter
    than lr when the gradients disagree (NoisyGrad flips their sign). By
    default the moments start after the warm-up and the first step is lr
    long."""
    runner = runner_for(tmp_path, hooks=[
        dict(type='DynOPoolRatioWarmupHook', begin_iter=4,
             warm_moments=warm_moments)
    ], max_iters=5, lr=0.05, optimizer='Adam', model=NoisyGrad())
    track = TrackAlpha()
    runner.register_hook(track)
    alphas = track.seen
    start = runner.model.pool.alpha.detach().clone()
    runner.train()
    for alpha in alphas[:4]:
        assert torch.equal(alpha, start)
    optimizer = runner.optim_wrapper.optimizer
    state = optimizer.state[runner.model.pool.alpha]
    assert int(state['step']) == (5 if warm_moments else 1)
    first_step = (alphas[4] - start).abs().max().item()
    if warm_moments:
        assert 0 < first_step < 0.8 * 0.05
    else:
        assert first_step == pytest.approx(0.05, rel=1e-3)
