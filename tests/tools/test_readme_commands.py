"""The README's remaining commands, each run once at a tiny size."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo')
SHORT_DEMO = [
    'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
    'custom_hooks.0.interval=1', 'train_dataloader.batch_size=2',
    'val_dataloader.dataset.num_samples=2'
]


def run(args, timeout=240, extra_env=None, **kwargs):
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH',
                                                             ''),
               **(extra_env or {}))
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, **kwargs)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.mark.parametrize('config', [
    'fixed-stride_toynet_stretched.py',
    'dynopool-target0.7_toynet_stretched.py', 'dynopool_toynet_tiled.py',
    'dynopool_toynet_enlarged.py', 'dynopool-matched_toynet_tiled.py'
])
def test_demo_configs_train(config, tmp_path):
    log = run([sys.executable, 'tools/train.py', osp.join(DEMO, config),
               '--work-dir', str(tmp_path), '--cfg-options', *SHORT_DEMO])
    assert 'mIoU' in log
    if config.startswith('dynopool'):
        records = json.loads((tmp_path / 'dynopool_ratios.json').read_text())
        assert [r['iter'] for r in records] == [1, 2]


def val_miou(log):
    """The mIoU of the last validation/test line of a log."""
    return [line.split('mIoU:')[1].split()[0] for line in log.splitlines()
            if 'mIoU:' in line][-1]


def test_matched_demo_freezes_and_its_checkpoint_tests_alike(tmp_path):
    """dynopool-matched: the ratios freeze during training (here after 1 of
    2 iterations) and the checkpoint keeps them: ``tools/test.py`` on the
    config's unfrozen model gives the in-training validation's mIoU."""
    config = osp.join(DEMO, 'dynopool-matched_toynet_stretched.py')
    log = run([sys.executable, 'tools/train.py', config, '--work-dir',
               str(tmp_path), '--cfg-options', *SHORT_DEMO,
               'custom_hooks.1.freeze_at_iter=1'])
    assert 'frozen to' in log and 'after 1 training iterations' in log
    log_test = run([sys.executable, 'tools/test.py', config,
                    str(tmp_path / 'iter_2.pth'), '--work-dir',
                    str(tmp_path / 'test'), '--cfg-options',
                    'test_dataloader.dataset.num_samples=2'])
    assert 'missing keys' not in log_test
    assert val_miou(log_test) == val_miou(log)


def path_without_venv() -> str:
    """PATH without the directory of this interpreter (the venv's bin): the
    launch scripts must not depend on an activated venv."""
    bin_dir = osp.dirname(sys.executable)
    return os.pathsep.join(p for p in os.environ.get('PATH', '').split(
        os.pathsep) if p and osp.abspath(p) != osp.abspath(bin_dir))


def test_dist_train_and_test_scripts_two_processes(tmp_path):
    """``PYTHON=... bash tools/dist_train.sh CONFIG 2`` and then
    ``tools/dist_test.sh CONFIG CKPT 2``: ``$PYTHON -m torch.distributed.run``,
    gloo on CPU, with the venv's bin *not* on PATH (no ``torchrun`` there)."""
    env = dict(os.environ, PORT=str(29500 + os.getpid() % 1000),
               OMP_NUM_THREADS='1', PYTHON=sys.executable,
               PATH=path_without_venv())
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh',
         osp.join(DEMO, 'dynopool_toynet_stretched.py'), '2', '--work-dir',
         str(tmp_path), '--cfg-options', *SHORT_DEMO,
         'default_hooks.logger.interval=1'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    # both tails: training progress is on stdout, a crash on stderr
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert 'Iter(train) [2/2]' in log
    assert 'gloo' in log and 'Distributed training: True' in log
    assert log.count('no GPU: distributed run on CPU') == 2  # two ranks
    assert (tmp_path / 'iter_2.pth').exists()

    proc = subprocess.run(
        ['bash', 'tools/dist_test.sh',
         osp.join(DEMO, 'dynopool_toynet_stretched.py'),
         str(tmp_path / 'iter_2.pth'), '2', '--work-dir',
         str(tmp_path / 'test'), '--cfg-options',
         'test_dataloader.dataset.num_samples=2'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    log_test = proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert 'Distributed training: True' in log_test
    assert val_miou(log_test) == val_miou(log)


@pytest.mark.parametrize('script', ['dist_train.sh', 'dist_test.sh'])
def test_dist_scripts_name_a_missing_interpreter(script):
    proc = subprocess.run(
        ['bash', f'tools/{script}', 'config.py', 'ckpt.pth', '2'], cwd=REPO,
        env=dict(os.environ, PYTHON='/nonexistent/python'),
        capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "no Python interpreter '/nonexistent/python'" in proc.stderr
    assert 'set PYTHON' in proc.stderr


def test_benchmark_dynopool_prints_ratios():
    log = run([sys.executable, 'tools/analysis_tools/benchmark_dynopool.py',
               '--device', 'cpu', '--threads', '1', '--repeat', '1',
               '--warmup', '0', '--cpu-shape', '1', '2', '8', '8'])
    assert 'DynOPool (ours)' in log and 'x max_pool2d' in log


def test_toy_scene_preview(tmp_path):
    run([sys.executable, '-m', 'mmdynopool.datasets.toy_scenes', '--out',
         str(tmp_path)])
    assert any(name.endswith('.png') for name in os.listdir(tmp_path))


def test_compare_ratios_matched_recipe_against_baseline(tmp_path):
    """The README's "mIoU at matched GMACs" command, one seed, 2 iterations:
    both models train and the comparison table is printed."""
    log = run([sys.executable, 'tools/analysis_tools/compare_ratios.py',
               '--variants', 'stretched', '--seeds', '0', '--baseline',
               '--config', 'configs/demo/dynopool-matched_toynet_{variant}.py',
               '--work-dir', str(tmp_path), '--json-out',
               str(tmp_path / 'summary.json'), '--cfg-options', *SHORT_DEMO],
              timeout=400)
    assert 'DynOPool vs fixed stride' in log
    assert (tmp_path / 'dynopool' / 'stretched' / 'seed0' /
            'iter_2.pth').exists()
    assert (tmp_path / 'fixed-stride' / 'stretched' / 'seed0' /
            'iter_2.pth').exists()
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert summary['seeds'] == [0]


@pytest.mark.skipif(
    __import__('importlib').util.find_spec('triton') is None,
    reason="needs triton (the 'tests' extra installs it)")
def test_train_with_the_triton_backend(tmp_path):
    """``MMDYNOPOOL_BACKEND=triton python tools/train.py CONFIG``: here on
    the CPU, under Triton's interpreter (as CI tests the kernels); the
    ratios learn through the kernels' alpha gradient (from the first
    iteration: the demo's warm-up, which holds them for 100, is cut)."""
    run([sys.executable, 'tools/train.py',
         osp.join(DEMO, 'dynopool_toynet_stretched.py'), '--work-dir',
         str(tmp_path), '--cfg-options', *SHORT_DEMO,
         'custom_hooks.1.begin_iter=0'],
        extra_env=dict(MMDYNOPOOL_BACKEND='triton', TRITON_INTERPRET='1'))
    records = json.loads((tmp_path / 'dynopool_ratios.json').read_text())
    first, last = records[0]['layers'], records[-1]['layers']
    assert first != last  # alpha moved
