"""The study tools' shared core: statistics, the training command, reading
the last validation metrics, and trainings side by side."""
import argparse
import json
import threading

import pytest

from mmdynopool.utils import seed_runs


def test_mean_std():
    mean, std = seed_runs.mean_std([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0) and std == pytest.approx(1.0)
    assert seed_runs.mean_std([4.0]) == (4.0, 0.0)


def test_train_command_seeds_the_ordinary_entry_point():
    command = seed_runs.train_command('c.py', 'w', 5, ['a=1'])
    assert command[1].endswith('tools/train.py')
    assert command[2:5] == ['c.py', '--work-dir', 'w']
    assert command[-3:] == ['--cfg-options', 'randomness.seed=5', 'a=1']
    assert seed_runs.max_iters_of(['x=1', 'train_cfg.max_iters=30']) == 30
    assert seed_runs.max_iters_of(['x=1']) is None


def write_scalars(work_dir, stamp, records):
    path = work_dir / stamp / 'vis_data'
    path.mkdir(parents=True)
    (path / 'scalars.json').write_text(
        '\n'.join(json.dumps(r) for r in records) + '\n')


def test_read_val_metrics_takes_the_newest_run_with_the_key(tmp_path):
    write_scalars(tmp_path, '20261201_000000',
                  [{'loss': 1.0, 'step': 1}, {'mIoU': 70.0, 'step': 10},
                   {'mIoU': 71.0, 'step': 20}])
    # a newer run that trained but never validated does not hide the old
    write_scalars(tmp_path, '20261202_000000', [{'loss': 0.5, 'step': 1}])
    assert seed_runs.read_val_metrics(str(tmp_path))['mIoU'] == 71.0
    write_scalars(tmp_path, '20261203_000000',
                  [{'skimage/PSNR': 32.0, 'step': 600}])
    assert seed_runs.read_val_metrics(
        str(tmp_path), 'skimage/PSNR')['skimage/PSNR'] == 32.0
    assert seed_runs.read_val_metrics(str(tmp_path))['mIoU'] == 71.0
    assert seed_runs.read_val_metrics(str(tmp_path / 'none')) == {}


def test_train_all_runs_side_by_side_and_names_a_failed_log(
        tmp_path, monkeypatch):
    seen, lock = [], threading.Lock()

    def fake_run(command, env=None, **kwargs):
        with lock:
            seen.append((command[command.index('--work-dir') + 1],
                         env.get('OMP_NUM_THREADS')))

        class Done:
            returncode = 3 if 'bad' in command[2] else 0

        return Done()

    monkeypatch.setattr(seed_runs.subprocess, 'run', fake_run)
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    monkeypatch.setattr(seed_runs.os, 'sched_getaffinity',
                        lambda pid: {0, 1, 2, 3}, raising=False)
    tasks = [
        seed_runs.TrainTask('a', seed, 'good.py', str(tmp_path / f's{seed}'))
        for seed in range(3)
    ]
    seed_runs.train_all(tasks, jobs=2)
    assert sorted(seen) == [(str(tmp_path / f's{s}'), '2') for s in range(3)]
    assert all((tmp_path / f's{s}' / 'train_stdout.log').exists()
               for s in range(3))
    with pytest.raises(RuntimeError, match=r'exit 3.*bad/train_stdout.log'):
        seed_runs.train_all(
            [seed_runs.TrainTask('b', 0, 'bad.py', str(tmp_path / 'bad'))])


def test_add_run_args_gives_every_study_the_same_options():
    parser = argparse.ArgumentParser()
    seed_runs.add_run_args(parser, 'work_dirs/x', 'WORK_DIR/<run>')
    args = parser.parse_args(['--seeds', '3', '4', '--reuse', '--jobs', '2',
                              '--cfg-options', 'a=1', 'b=2'])
    assert args.seeds == [3, 4] and args.reuse and args.jobs == 2
    assert args.cfg_options == ['a=1', 'b=2']
    assert args.work_dir == 'work_dirs/x' and not args.no_train
    assert args.json_out is None


def test_run_complete_needs_ratios_up_to_max_iters_and_the_metric(tmp_path):
    assert not seed_runs.run_complete(str(tmp_path))
    (tmp_path / 'dynopool_ratios.json').write_text(
        json.dumps([{'iter': 600, 'gmacs': 1.0, 'layers': {}}]))
    assert not seed_runs.run_complete(str(tmp_path), key='skimage/PSNR')
    write_scalars(tmp_path, '20261201_000000',
                  [{'skimage/PSNR': 32.0, 'step': 600}])
    assert seed_runs.run_complete(str(tmp_path), key='skimage/PSNR')
    assert seed_runs.run_complete(str(tmp_path), 600, 'skimage/PSNR')
    assert not seed_runs.run_complete(str(tmp_path), 601, 'skimage/PSNR')
    assert not seed_runs.run_complete(str(tmp_path))  # no mIoU logged
