"""The CPU demo: its backbone, the analysis tools on synthetic runs, and a
few iterations of the real training entry point."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from mmdynopool.models.backbones import ToyNet
from mmdynopool.utils import seed_runs

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LAYERS = ('backbone.pool1', 'backbone.pool2', 'backbone.pool3')


def load_tool(name):
    path = osp.join(REPO, 'tools', 'analysis_tools', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'demo_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(iteration, ratios, gmacs=0.01, size=64):
    """A ratio-hook record; ``ratios`` is one (r_h, r_w) per layer."""
    layers, h, w = {}, size, size
    for name, (r_h, r_w) in zip(LAYERS, ratios):
        h, w = max(1, round(r_h * h)), max(1, round(r_w * w))
        layers[name] = {'r_h': r_h, 'r_w': r_w, 'h': h, 'w': w}
    return {'iter': iteration, 'gmacs': gmacs, 'layers': layers}


def write_run(work_dir, final_ratios, miou=80.0, gmacs=0.01, iters=100):
    """A finished run as the train tool leaves it: the ratios json and
    mmengine's scalars with a validation line."""
    os.makedirs(osp.join(work_dir, '20260101_000000', 'vis_data'))
    records = [record(iters // 2, [(0.5, 0.5)] * 3, 0.013),
               record(iters, final_ratios, gmacs)]
    with open(osp.join(work_dir, 'dynopool_ratios.json'), 'w') as f:
        json.dump(records, f)
    with open(osp.join(work_dir, '20260101_000000', 'vis_data',
                       'scalars.json'), 'w') as f:
        f.write(json.dumps({'loss': 1.0, 'step': iters}) + '\n')
        f.write(json.dumps({'aAcc': 90.0, 'mIoU': miou, 'step': iters}) +
                '\n')


# -- the backbone -------------------------------------------------------------
def test_toynet_shapes_and_layers():
    net = ToyNet(stem_channels=4, stage_channels=(8, 8, 8), num_convs=1)
    outs = net(torch.randn(2, 3, 64, 48))
    assert [tuple(o.shape) for o in outs] == [(2, 4, 64, 48), (2, 8, 32, 24),
                                             (2, 8, 16, 12), (2, 8, 8, 6)]
    assert list(net.dynopools) == ['pool1', 'pool2', 'pool3']
    twin = ToyNet(stem_channels=4, stage_channels=(8, 8, 8), num_convs=1,
                  resize='maxpool', out_indices=(3, ))
    assert not twin.dynopools
    assert all(
        isinstance(m, nn.MaxPool2d) for m in twin.resize_layers.values())
    assert len(twin(torch.randn(1, 3, 64, 48))) == 1


def test_toynet_twins_start_as_the_same_function():
    """At r = 0.5 a DynOPool is the stride-2 max-pool it replaces."""
    dyn = ToyNet(stem_channels=4, stage_channels=(8, 8), num_convs=2)
    fixed = ToyNet(stem_channels=4, stage_channels=(8, 8), num_convs=2,
                   resize='maxpool')
    state = {k: v for k, v in dyn.state_dict().items() if 'alpha' not in k}
    fixed.load_state_dict(state)
    dyn.eval(), fixed.eval()
    x = torch.randn(2, 3, 32, 32)
    for a, b in zip(dyn(x), fixed(x)):
        torch.testing.assert_close(a, b)


def test_toynet_bad_arguments():
    with pytest.raises(ValueError, match='resize'):
        ToyNet(resize='avgpool')
    with pytest.raises(ValueError, match='init_ratio'):
        ToyNet(dynopool_cfg=dict(init_ratio=0.7))
    with pytest.raises(ValueError, match='out_indices'):
        ToyNet(stage_channels=(8, 8), out_indices=(3, ))


# -- plot_ratios --------------------------------------------------------------
def test_plot_ratios_writes_pngs(tmp_path):
    plot = load_tool('plot_ratios')
    records = [
        record(i * 10, [(0.5 - 0.01 * i, 0.5 + 0.01 * i)] * 3, 0.01 - i * 1e-4)
        for i in range(1, 6)
    ]
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'dynopool_ratios.json').write_text(json.dumps(records))
    paths = plot.main([str(run), '--out', str(tmp_path / 'plots')])
    assert set(paths) == {'ratios', 'sizes'}
    for path in paths.values():
        assert osp.getsize(path) > 1000
        with open(path, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert plot.infer_input_size(records) == (64, 64)
    # one record at r = 0.32 leaves 61..64 open; one near 0.5 pins it down
    late = dict(iter=600, gmacs=0.005, layers={'p1': dict(
        r_h=0.32, r_w=0.64, h=20, w=41)})
    early = dict(iter=25, gmacs=0.012, layers={'p1': dict(
        r_h=0.4916, r_w=0.5006, h=31, w=32)})
    assert plot.infer_input_size([late]) == (61, 64)
    assert plot.infer_input_size([early, late]) == (63, 64)
    # the ratio hook records the input size: no guessing
    early['layers']['p1'].update(in_h=64, in_w=64)
    assert plot.infer_input_size([late, early]) == (64, 64)
    assert plot.fixed_stride_sizes((64, 48), 3) == [(32, 24), (16, 12),
                                                    (8, 6)]
    # a file path works too, and the default output folder is its folder
    paths = plot.main([str(run / 'dynopool_ratios.json'), '--prefix', 'x_'])
    assert paths['sizes'] == str(run / 'x_sizes.png')


# -- compare_ratios -----------------------------------------------------------
def test_compare_ratios_statistics():
    compare = load_tool('compare_ratios')
    runs = [{
        'gmacs': 0.01,
        'mIoU': 80.0,
        'layers': record(1, [(0.4, 0.6), (0.5, 0.5), (0.3, 0.7)])['layers']
    }, {
        'gmacs': 0.02,
        'mIoU': 90.0,
        'layers': record(1, [(0.6, 0.4), (0.5, 0.5), (0.3, 0.9)])['layers']
    }]
    stats = compare.aggregate(runs)
    assert stats['num_runs'] == 2
    assert stats['gmacs'][0] == pytest.approx(0.015)
    assert stats['mIoU'][0] == pytest.approx(85.0)
    pool1 = stats['layers']['backbone.pool1']
    assert pool1['r_h'][0] == pytest.approx(0.5)
    assert pool1['h_lt_w_runs'] == 1
    assert stats['layers']['backbone.pool3']['r_w'][0] == pytest.approx(0.8)
    assert stats['layers']['backbone.pool3']['h_lt_w_runs'] == 2


def findings(compare, stretched, tiled, enlarged, num_early=None):
    stats = {
        name: compare.aggregate([{
            'gmacs': 0.01,
            'mIoU': 80.0,
            'layers': record(1, ratios)['layers']
        }]) for name, ratios in (('stretched', stretched), ('tiled', tiled),
                                 ('enlarged', enlarged))
    }
    return [r['holds'] for r in compare.check_findings(stats, num_early)]


def test_compare_ratios_findings():
    compare = load_tool('compare_ratios')
    wide = [(0.4, 0.6), (0.3, 0.5), (0.5, 0.5)]  # r_h < r_w at 2 of 3
    tall = [(0.6, 0.4), (0.5, 0.5), (0.5, 0.4)]  # at 0 of 3
    big = [(0.6, 0.6), (0.5, 0.5), (0.2, 0.2)]
    small = [(0.4, 0.4), (0.4, 0.4), (0.5, 0.5)]
    # (a), (a') stretched more anisotropic than the others, (b)
    assert findings(compare, wide, big, small) == [True, True, True]
    assert findings(compare, tall, small, big) == [False, False, False]
    # r_h < r_w at most layers, but no more than on an unstretched variant
    assert findings(compare, wide, wide, small) == [True, False, False]
    # early = first 2 of 3 layers by default: pool2 is equal -> not larger
    assert findings(compare, wide, [(0.6, 0.6), (0.4, 0.4), (0.5, 0.5)],
                    small) == [True, True, False]
    assert findings(compare, wide, [(0.6, 0.6), (0.4, 0.4), (0.5, 0.5)],
                    small, num_early=1) == [True, True, True]
    missing = compare.check_findings({})
    assert [r['holds'] for r in missing] == [None, None, None]


def test_compare_ratios_reads_runs(tmp_path, capsys):
    compare = load_tool('compare_ratios')
    ratios = {
        'stretched': [(0.4, 0.6), (0.3, 0.5), (0.4, 0.9)],
        'tiled': [(0.6, 0.6), (0.5, 0.5), (0.3, 0.3)],
        'enlarged': [(0.3, 0.3), (0.4, 0.4), (0.5, 0.5)]
    }
    for tag in ('dynopool', 'fixed-stride'):
        for variant, final in ratios.items():
            for seed in (0, 1):
                write_run(str(tmp_path / tag / variant / f'seed{seed}'),
                          final if tag == 'dynopool' else [], 70.0 + seed)
    assert compare.run_complete(str(tmp_path / 'dynopool' / 'tiled' /
                                    'seed0'), max_iters=100)
    assert not compare.run_complete(
        str(tmp_path / 'dynopool' / 'tiled' / 'seed0'), max_iters=200)
    assert not compare.run_complete(str(tmp_path / 'nothing'))
    out_json = tmp_path / 'summary.json'
    result = compare.main([
        '--seeds', '0', '1', '--work-dir',
        str(tmp_path), '--no-train', '--baseline', '--json-out',
        str(out_json)
    ])
    text = capsys.readouterr().out
    assert 'stretched  backbone.pool3' in text
    assert '0.400+-0.000' in text and '70.50+-0.71' in text
    assert text.count('HOLDS') == 3 and 'DOES NOT HOLD' not in text
    assert 'fixed-stride' in text
    assert [f['holds'] for f in result['findings']] == [True, True, True]
    assert json.loads(out_json.read_text())['seeds'] == [0, 1]


def test_compare_ratios_reuse_skips_training(tmp_path, monkeypatch):
    compare = load_tool('compare_ratios')
    write_run(str(tmp_path / 'dynopool' / 'tiled' / 'seed3'),
              [(0.5, 0.5)] * 3)

    def no_training(*args, **kwargs):
        raise AssertionError('should have reused the finished run')

    monkeypatch.setattr(seed_runs.subprocess, 'run', no_training)
    runs = compare.run_all(compare.CONFIG_TEMPLATE, ['tiled'], [3],
                           str(tmp_path), True, [], 'dynopool')
    assert runs['tiled'][0]['mIoU'] == 80.0


# -- the real entry point -----------------------------------------------------
def test_demo_train_writes_ratios(tmp_path):
    """A few iterations of the demo config through tools/train.py."""
    work_dir = tmp_path / 'run'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [
            sys.executable,
            osp.join(REPO, 'tools', 'train.py'),
            osp.join(REPO, 'configs', 'demo',
                     'dynopool_toynet_stretched.py'), '--work-dir',
            str(work_dir), '--cfg-options', 'train_cfg.max_iters=4',
            'train_cfg.val_interval=4', 'custom_hooks.0.interval=2',
            'train_dataloader.batch_size=2',
            'val_dataloader.dataset.num_samples=4'
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = json.loads((work_dir / 'dynopool_ratios.json').read_text())
    assert [r['iter'] for r in records] == [2, 4]
    assert list(records[-1]['layers']) == list(LAYERS)
    assert records[-1]['gmacs'] > 0
    compare = load_tool('compare_ratios')
    summary = compare.summarise_run(str(work_dir))
    assert summary['iter'] == 4 and summary['mIoU'] is not None
