"""``tools/train.py`` and ``tools/test.py`` end to end on tiny ADE20K and
Cityscapes sets in mmseg's layouts, with the real DynOPool recipes
(``configs/dynopool/fcn_dynopool-r50-d8_*``) shrunk by ``--cfg-options``.

Every run is a subprocess, as a user would start it. mmseg's dataset
classes, transforms and ``IoUMetric`` do the reading and scoring.
"""
import json
import math
import os
import os.path as osp
import shutil

import pytest

from .seg_data import (ADE_CONFIG, CITYSCAPES_CONFIG, TOOLS, check_ok,
                       checkpoint_alphas, make_ade20k, make_cityscapes,
                       read_test_metrics, run_tool, scalar_records,
                       tiny_seg_options)

ALPHA_HOOK = 'custom_hooks.0.type=tests.tools.seg_data.RankAlphaRatioHook'
TIMEOUT = 300  # a safety net; each run takes ~15-30 s on a loaded 2-core box


def train(config, data_root, work_dir, *extra_args, **option_kwargs):
    args = [
        osp.join(TOOLS, 'train.py'), config, '--work-dir', work_dir,
        *extra_args, '--cfg-options',
        *tiny_seg_options(data_root, **option_kwargs), ALPHA_HOOK
    ]
    return check_ok(run_tool(args, timeout=TIMEOUT))


def alpha_dump(work_dir, rank=0):
    with open(osp.join(work_dir, f'alpha_rank{rank}.json')) as f:
        return json.load(f)


def val_mious(work_dir):
    """``{step: mIoU}`` of every validation in the work dir's logs."""
    return {r['step']: r['mIoU'] for r in scalar_records(work_dir)
            if 'mIoU' in r}


def max_change(before, after):
    assert before.keys() == after.keys()
    return max(
        abs(a - b) for k in before for a, b in zip(before[k], after[k]))


def assert_valid_miou(value):
    assert isinstance(value, float) and math.isfinite(value)
    assert 0.0 <= value <= 100.0


@pytest.fixture(scope='module')
def ade_run(tmp_path_factory):
    """4 iterations on the tiny ADE20K set, checkpoints at 2 and 4,
    validation at 4."""
    tmp = tmp_path_factory.mktemp('ade')
    root = make_ade20k(str(tmp / 'ADEChallengeData2016'))
    work_dir = str(tmp / 'work_dir')
    log = train(ADE_CONFIG, root, work_dir, max_iters=4, ckpt_interval=2)
    return dict(root=root, work_dir=work_dir, log=log)


def test_ade20k_train_val_produces_miou_and_moves_alpha(ade_run):
    work_dir = ade_run['work_dir']
    assert 'DynOPoolEncoderDecoder' in ade_run['log'] or \
        'DynOPoolResNetV1c' in ade_run['log']
    mious = val_mious(work_dir)
    assert list(mious) == [4], mious
    assert_valid_miou(mious[4])
    # the 150 ADE20K classes were scored (reduce_zero_label: PNG value 0 is
    # ignored, PNG 1..150 are classes 0..149)
    assert 'per class results' in ade_run['log']

    dump = alpha_dump(work_dir)
    assert dump['before_train']['iter'] == 0
    assert dump['after_train']['iter'] == 4
    init = dump['before_train']['alpha']
    assert len(init) >= 3, 'expected several DynOPool layers in the backbone'
    ckpt = checkpoint_alphas(osp.join(work_dir, 'iter_4.pth'))
    assert ckpt == dump['after_train']['alpha']
    assert max_change(init, ckpt) > 1e-5, (init, ckpt)
    print(f'ADE20K: val mIoU {mious[4]} at iter 4; alpha init -> iter 4:')
    for name in init:
        print(f'  {name}: {init[name]} -> {ckpt[name]}')

    with open(osp.join(work_dir, 'dynopool_ratios.json')) as f:
        ratios = json.load(f)
    assert [r['iter'] for r in ratios] == [1, 2, 3, 4]


def test_ade20k_resume_continues(ade_run, tmp_path):
    # resume in a copy, so the other tests keep the original run
    work_dir = str(tmp_path / 'work_dir')
    shutil.copytree(ade_run['work_dir'], work_dir)
    before = checkpoint_alphas(osp.join(work_dir, 'iter_4.pth'))
    log = train(ADE_CONFIG, ade_run['root'], work_dir, '--resume',
                max_iters=6, ckpt_interval=2)
    assert 'resumed' in log.lower()
    # training went on from iteration 4: only iterations 5 and 6 ran
    assert 'Iter(train) [5/6]' in log and 'Iter(train) [6/6]' in log
    assert 'Iter(train) [1/6]' not in log
    dump = alpha_dump(work_dir)
    assert dump['before_train']['iter'] == 4
    assert dump['before_train']['alpha'] == before  # bit-identical
    assert dump['after_train']['iter'] == 6
    after = checkpoint_alphas(osp.join(work_dir, 'iter_6.pth'))
    assert after == dump['after_train']['alpha']
    assert max_change(before, after) > 0
    # validation of the resumed run
    assert 6 in val_mious(work_dir)
    # the ratio log goes on in the same file
    with open(osp.join(work_dir, 'dynopool_ratios.json')) as f:
        assert [r['iter'] for r in json.load(f)] == [1, 2, 3, 4, 5, 6]
    # the budget of GMACsLoss(target_ratio) survives the resume
    import torch
    states = [
        torch.load(osp.join(work_dir, f'iter_{i}.pth'), map_location='cpu',
                   weights_only=False)['state_dict'] for i in (4, 6)
    ]
    budgets = [s['budget_loss.initial_gmacs'] for s in states]
    assert float(budgets[0]) > 0 and torch.equal(budgets[0], budgets[1])


def test_ade20k_test_tool_metrics_and_show_dir(ade_run, tmp_path):
    work_dir, show_dir = str(tmp_path / 'test'), str(tmp_path / 'show')
    ckpt = osp.join(ade_run['work_dir'], 'iter_4.pth')
    args = [
        osp.join(TOOLS, 'test.py'), ADE_CONFIG, ckpt, '--work-dir', work_dir,
        '--show-dir', show_dir, '--cfg-options',
        *tiny_seg_options(ade_run['root'])
    ]
    check_ok(run_tool(args, timeout=TIMEOUT))
    metrics = read_test_metrics(work_dir)
    assert_valid_miou(metrics['mIoU'])
    # same weights, same validation images and pipeline as the validation
    # at the end of training
    assert metrics['mIoU'] == pytest.approx(
        val_mious(ade_run['work_dir'])[4], abs=0.01)
    painted = [
        osp.join(d, f) for d, _, files in os.walk(show_dir) for f in files
        if f.endswith('.png') or f.endswith('.jpg')
    ]
    print(f"test.py mIoU {metrics['mIoU']}, painted {len(painted)} images")
    assert len(painted) == 2, painted  # one per validation image
    from PIL import Image
    for path in painted:
        with Image.open(path) as image:
            assert image.size[0] > 0 and image.size[1] > 0


def test_cityscapes_train_val(tmp_path):
    root = make_cityscapes(str(tmp_path / 'cityscapes'))
    work_dir = str(tmp_path / 'work_dir')
    log = train(CITYSCAPES_CONFIG, root, work_dir, max_iters=4)
    mious = val_mious(work_dir)
    assert list(mious) == [4], mious
    assert_valid_miou(mious[4])
    assert 'per class results' in log
    dump = alpha_dump(work_dir)
    ckpt = checkpoint_alphas(osp.join(work_dir, 'iter_4.pth'))
    assert ckpt == dump['after_train']['alpha']
    assert max_change(dump['before_train']['alpha'], ckpt) > 1e-5
    print(f'Cityscapes: val mIoU {mious[4]} at iter 4, max |alpha change| '
          f"{max_change(dump['before_train']['alpha'], ckpt):.2e}")


def test_benchmark_train_step_smoke(tmp_path):
    """benchmark_train_step.py builds mmseg's fcn_r50-d8 and the DynOPool
    one and times real train steps (tiny crop here: only a smoke test)."""
    out = str(tmp_path / 'bench.json')
    stdout = check_ok(
        run_tool([
            osp.join(TOOLS, 'analysis_tools', 'benchmark_train_step.py'),
            '--crop', '64', '48', '--batch', '1', '--iters', '1', '--warmup',
            '0', '--device', 'cpu', '--fixed-ratios', '--cudnn-benchmark',
            '--out', out
        ], timeout=TIMEOUT))
    assert 'ratio dynopool / baseline' in stdout
    with open(out) as f:
        result = json.load(f)
    assert result['crop'] == [64, 48] and result['batch'] == 1
    assert result['fixed_ratios'] and 'fixed ratios' in stdout
    assert result['cudnn_benchmark'] and 'cudnn.benchmark on' in stdout
    assert result['backend'] == 'auto' and 'DynOPool backend auto' in stdout
    assert result['baseline']['dynopool_layers'] == 0
    assert result['dynopool']['dynopool_layers'] >= 3
    for name in ('baseline', 'dynopool'):
        assert result[name]['s_per_iter'] > 0
    assert result['ratio'] == pytest.approx(
        result['dynopool']['s_per_iter'] / result['baseline']['s_per_iter'])


def test_benchmark_train_step_amp_needs_cuda():
    """--amp (mmengine's AmpOptimWrapper) is refused on the CPU with a
    message naming the argument, before any model is built."""
    proc = run_tool([
        osp.join(TOOLS, 'analysis_tools', 'benchmark_train_step.py'),
        '--device', 'cpu', '--amp', 'bf16'
    ], timeout=TIMEOUT)
    assert proc.returncode == 2
    assert '--amp needs a CUDA device' in proc.stdout
    assert 'drop --amp' in proc.stdout


def test_ade20k_test_tool_freeze_gives_the_same_miou(ade_run, tmp_path):
    """``tools/test.py --freeze``: every DynOPool replaced by its static form
    after loading the checkpoint; the metrics do not change."""
    ckpt = osp.join(ade_run['work_dir'], 'iter_4.pth')
    work_dir = str(tmp_path / 'frozen')
    args = [
        osp.join(TOOLS, 'test.py'), ADE_CONFIG, ckpt, '--freeze',
        '--work-dir', work_dir, '--cfg-options',
        *tiny_seg_options(ade_run['root'])
    ]
    log = check_ok(run_tool(args, timeout=TIMEOUT))
    assert 'DynOPool layer(s) frozen to their learned ratios' in log
    metrics = read_test_metrics(work_dir)
    assert metrics['mIoU'] == pytest.approx(
        val_mious(ade_run['work_dir'])[4], abs=0.01)


@pytest.mark.parametrize('fixed_ratios', [True, False])
def test_benchmark_train_step_fixed_ratios_keeps_sizes(fixed_ratios):
    """--fixed-ratios: alpha is put back after every timed step (the sizes
    stay the initial ones); without it alpha learns."""
    import importlib.util

    import torch

    from mmengine.optim import OptimWrapper
    from mmengine.registry import MODELS, init_default_scope

    from tests.tiny_segmentor import DATA_PREPROCESSOR, FCN_HEAD, RESNET_D8
    spec = importlib.util.spec_from_file_location(
        'benchmark_train_step',
        osp.join(TOOLS, 'analysis_tools', 'benchmark_train_step.py'))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='DynOPoolEncoderDecoder',
             data_preprocessor=dict(DATA_PREPROCESSOR, size=(32, 32)),
             backbone=RESNET_D8, decode_head=FCN_HEAD)).train()
    alphas = [m.alpha for m in model.modules() if hasattr(m, 'alpha')]
    before = torch.stack([a.detach().clone() for a in alphas])
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1.0))
    data = bench.synthetic_batch(2, (32, 32), 4, seed=0)
    step = bench.step_timer(model, optim_wrapper, data, torch.device('cpu'),
                            fixed_ratios)
    assert step() > 0 and step() > 0
    after = torch.stack([a.detach() for a in alphas])
    assert torch.equal(after, before) == fixed_ratios
