"""compare_ratios.py's per-seed comparison, --baseline-work-dir and
--search-work-dir (search, then retrain), and plot_study.py, on synthetic
runs (no training)."""
import json
import os.path as osp
import re

import pytest

from mmdynopool.utils import seed_runs

from .test_demo_tools import REPO, load_tool, write_run


def make_runs(root, tag, variant, mious, gmacs, ratios=((0.4, 0.6), ) * 3):
    for seed, (miou, g) in enumerate(zip(mious, gmacs)):
        write_run(str(root / tag / variant / f'seed{seed}'), list(ratios),
                  miou, g)


def test_per_seed_table_and_baseline_work_dir(tmp_path, capsys):
    compare = load_tool('compare_ratios')
    make_runs(tmp_path / 'new', 'dynopool', 'stretched', [91.5, 90.0, 92.0],
              [0.0120, 0.0126, 0.0127],
              ratios=((0.3, 0.8), (0.6, 0.4), (0.5, 0.5)))
    make_runs(tmp_path / 'base', 'fixed-stride', 'stretched',
              [90.5, 90.4, 91.0], [0.0127] * 3)
    result = compare.main([
        '--variants', 'stretched', '--seeds', '0', '1', '2', '--no-train',
        '--baseline', '--work-dir', str(tmp_path / 'new'),
        '--baseline-work-dir', str(tmp_path / 'base')
    ])
    entry = result['per_seed']['stretched']
    assert [r['delta'] for r in entry['rows']] == pytest.approx(
        [1.0, -0.4, 1.0])
    assert entry['seeds_ahead'] == 2 and entry['num_seeds'] == 3
    assert entry['delta'][0] == pytest.approx(0.5333, abs=1e-3)
    assert entry['max_gmacs_rel'] == pytest.approx(1.0)
    assert entry['gmacs_rel'][0] == pytest.approx((0.012 / 0.0127 + 0.0126 /
                                                   0.0127 + 1) / 3)
    # r_h < r_w at pool1 only (the final ratios of every seed)
    assert [r['h_lt_w_layers'] for r in entry['rows']] == [1, 1, 1]
    text = capsys.readouterr().out
    assert 'ahead in 2/3 seeds' in text and '+1.00' in text
    assert '-0.40' in text


def test_search_work_dir_hands_each_seed_its_search_run(tmp_path,
                                                        monkeypatch):
    compare = load_tool('compare_ratios')
    make_runs(tmp_path / 'search', 'dynopool', 'stretched', [90.0, 90.0],
              [0.012, 0.012])
    commands = []

    def fake_run(command, **kwargs):
        commands.append(command)
        work_dir = command[command.index('--work-dir') + 1]
        write_run(work_dir, [(0.4, 0.6)] * 3, 91.0)

        class Done:
            returncode = 0

        return Done()

    monkeypatch.setattr(seed_runs.subprocess, 'run', fake_run)
    config = osp.join(REPO, 'configs', 'demo', 'study',
                      'retrain_toynet_{variant}.py')
    runs = compare.run_all(config, ['stretched'], [0, 1],
                           str(tmp_path / 'retrain'), False, [], 'dynopool',
                           search_work_dir=str(tmp_path / 'search'))
    assert len(runs['stretched']) == 2
    for seed, command in enumerate(commands):
        source = osp.abspath(
            str(tmp_path / 'search' / 'dynopool' / 'stretched' /
                f'seed{seed}'))
        # custom_hooks.2 is the retrain config's DynOPoolSetRatiosHook
        assert f'custom_hooks.2.source={source}' in command
    with pytest.raises(FileNotFoundError, match='no finished search run'):
        compare.run_all(config, ['stretched'], [5], str(tmp_path / 'r2'),
                        False, [], 'dynopool',
                        search_work_dir=str(tmp_path / 'search'))
    with pytest.raises(ValueError, match='no DynOPoolSetRatiosHook'):
        compare.run_all(
            osp.join(REPO, 'configs', 'demo',
                     'dynopool_toynet_{variant}.py'), ['stretched'], [0],
            str(tmp_path / 'r3'), False, [], 'dynopool',
            search_work_dir=str(tmp_path / 'search'))


def test_plot_study_writes_the_figures(tmp_path):
    plot = load_tool('plot_study')
    make_runs(tmp_path / 'runs', 'dynopool', 'stretched', [91.0, 90.0],
              [0.012, 0.012])
    snr = {'alpha': {}}
    for layer in ('backbone.pool1', 'backbone.pool2'):
        for axis in ('h', 'w'):
            snr['alpha'][f'{layer}.{axis}'] = {
                'task': {'mean': 0.1, 'std': 0.5, 'snr': 0.2},
                'budget': {'mean': -0.4, 'std': 0.0, 'snr': 0.0}}
        snr['alpha'][f'{layer}.aspect'] = {
            'task': {'mean': -0.3, 'std': 1.0, 'snr': 0.3}}
    (tmp_path / 'snr.json').write_text(json.dumps(snr))
    summary = {'per_seed': {'stretched': {
        'rows': [{'delta': 1.0}, {'delta': 0.5}],
        'delta': [0.75, 0.35], 'gmacs_rel': [0.98, 0.01]}}}
    (tmp_path / 'summary.json').write_text(json.dumps(summary))
    written = plot.main([
        '--out', str(tmp_path / 'out'), '--snr',
        f"init, r=0.5={tmp_path / 'snr.json'}", '--runs',
        f"a={tmp_path / 'runs' / 'dynopool' / 'stretched'}", '--summary',
        f"a={tmp_path / 'summary.json'}"
    ])
    assert set(written) == {'snr', 'trajectories', 'deltas'}
    for path in written.values():
        assert osp.getsize(path) > 1000
    with pytest.raises(ValueError, match='LABEL=PATH'):
        plot.labelled(['no-label'])


def test_search_seed_offsets_average_several_searches_a_seed(
        tmp_path, monkeypatch):
    compare = load_tool('compare_ratios')
    for seed in (0, 100, 1):  # seed 101 is missing
        write_run(str(tmp_path / 'search' / 'dynopool' / 'stretched' /
                      f'seed{seed}'), [(0.4, 0.6)] * 3, 90.0)
    commands = []

    def fake_run(command, **kwargs):
        commands.append(command)
        write_run(command[command.index('--work-dir') + 1],
                  [(0.4, 0.6)] * 3, 91.0)

        class Done:
            returncode = 0

        return Done()

    monkeypatch.setattr(seed_runs.subprocess, 'run', fake_run)
    config = osp.join(REPO, 'configs', 'demo',
                      'dynopool-retrain_toynet_{variant}.py')
    compare.run_all(config, ['stretched'], [0], str(tmp_path / 'retrain'),
                    False, [], 'dynopool',
                    search_work_dir=str(tmp_path / 'search'),
                    search_seed_offsets=[0, 100])
    root = osp.abspath(str(tmp_path / 'search' / 'dynopool' / 'stretched'))
    assert (f'custom_hooks.2.source=[{root}/seed0,{root}/seed100]'
            in commands[0])
    # the list form is what mmengine's --cfg-options turns into a list
    from mmengine.config import DictAction
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    option = [c for c in commands[0] if c.startswith('custom_hooks.2')][0]
    parsed = parser.parse_args(['--cfg-options', option]).cfg_options
    assert parsed['custom_hooks.2.source'] == [f'{root}/seed0',
                                               f'{root}/seed100']
    with pytest.raises(FileNotFoundError, match=r'seed 1 \+ offset 100'):
        compare.run_all(config, ['stretched'], [1], str(tmp_path / 'r2'),
                        False, [], 'dynopool',
                        search_work_dir=str(tmp_path / 'search'),
                        search_seed_offsets=[0, 100])


def test_demo_search_then_retrain_commands(tmp_path):
    """The README's two commands at a tiny size: the matched search run,
    then the retrain config from its work dir - it starts (frozen) at the
    ratios the search ended with, and holds its area."""
    import os
    import subprocess
    import sys
    short = ['train_cfg.max_iters=3', 'train_cfg.val_interval=3',
             'custom_hooks.0.interval=1', 'train_dataloader.batch_size=2',
             'val_dataloader.dataset.num_samples=2']
    env = dict(os.environ, OMP_NUM_THREADS='1')

    def train(config, work_dir, *options):
        proc = subprocess.run(
            [sys.executable, 'tools/train.py', f'configs/demo/{config}',
             '--work-dir', str(work_dir), '--cfg-options', *short,
             *options], cwd=REPO, env=env, capture_output=True, text=True,
            timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[
            -3000:]
        return proc.stdout + proc.stderr

    search = tmp_path / 'search'
    train('dynopool-matched_toynet_stretched.py', search,
          'custom_hooks.1.freeze_at_iter=2', 'custom_hooks.3.begin_iter=0',
          'optim_wrapper.paramwise_cfg.alpha_lr_mult=100.0')
    last = json.loads((search / 'dynopool_ratios.json').read_text())[-1]
    ratios = {n: (v['r_h'], v['r_w']) for n, v in last['layers'].items()}
    assert any(abs(r_h - 0.5) > 1e-3 for r_h, _ in ratios.values())
    for name, (r_h, r_w) in ratios.items():  # the area was held (a
        # later layer's input may be a pixel short of the twin's)
        assert r_h * r_w <= 0.25 * 1.01
    log = train('dynopool-retrain_toynet_stretched.py', tmp_path / 'retrain',
                f'custom_hooks.2.source={search}',
                'custom_hooks.2.snap_pixels=0')
    expected = ', '.join(f'{n}: r=({r_h:.4f}, {r_w:.4f})'
                         for n, (r_h, r_w) in ratios.items())
    assert f'DynOPoolSetRatiosHook: {expected}' in log
    assert 'frozen to their learned ratios' in log
    # as configured (snap_pixels=1): three iterations moved no layer by a
    # whole output pixel, so the retrain keeps the fixed stride's grid
    log = train('dynopool-retrain_toynet_stretched.py',
                tmp_path / 'retrain-snap', f'custom_hooks.2.source={search}')
    assert ('kept the start ratio (learned within 1 px of it): '
            'backbone.pool1, backbone.pool2, backbone.pool3') in log
    # two searches (seeds 0 and 1), averaged: the segmentor's one forward
    # of a training sample holds every layer at most at the costlier
    # search's output area
    second = tmp_path / 'search1'
    train('dynopool-matched_toynet_stretched.py', second,
          'custom_hooks.1.freeze_at_iter=2', 'custom_hooks.3.begin_iter=0',
          'optim_wrapper.paramwise_cfg.alpha_lr_mult=100.0',
          'randomness.seed=1')
    log = train('dynopool-retrain_toynet_stretched.py',
                tmp_path / 'retrain2',
                f'custom_hooks.2.source=[{search},{second}]',
                'custom_hooks.2.snap_pixels=0')
    held = re.search(r"held at most the searches' output area: (.*)", log)
    assert held, log[-3000:]
    sizes = dict(re.findall(r'(backbone\.pool\d) (\d+x\d+)', held.group(1)))
    assert list(sizes) == list(ratios)
    def last_area(run, name):  # the last record with sizes (before the
        # freeze; frozen layers log none)
        records = json.loads((run / 'dynopool_ratios.json').read_text())
        layer = [r['layers'][name] for r in records
                 if r['layers'][name]['h'] is not None][-1]
        return layer['h'] * layer['w']

    for name, size in sizes.items():
        h, w = (int(v) for v in size.split('x'))
        assert h * w <= max(last_area(run, name) for run in (search, second))
    assert 'frozen to their learned ratios' in log
