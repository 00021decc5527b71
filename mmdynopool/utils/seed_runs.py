"""Trainings over several seeds, side by side, through the ordinary entry
point (``tools/train.py CONFIG --work-dir DIR --cfg-options
randomness.seed=S``), and what a finished one logged: the shared core of the
study tools (``compare_ratios.py`` for the demo, ``compare_sr.py`` for
super-resolution)."""
import argparse
import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class TrainTask(NamedTuple):
    """One training: ``label`` names it in the progress lines."""
    label: str
    seed: int
    config: str
    work_dir: str
    cfg_options: Sequence[str] = ()


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    var = sum((v - mean)**2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def read_val_metrics(work_dir: str, key: str = 'mIoU') -> Dict[str, float]:
    """The last validation record holding ``key`` that mmengine logged in
    ``<work_dir>/<timestamp>/vis_data/scalars.json`` (the newest run that
    validated); {} when none."""
    files = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    for path in reversed(files):
        metrics = {}
        with open(path, encoding='utf-8') as f:
            for line in f:
                line = line.strip()
                if line:
                    record = json.loads(line)
                    if key in record:
                        metrics = record
        if metrics:
            return metrics
    return {}


def run_complete(work_dir: str, max_iters: Optional[int] = None,
                 key: str = 'mIoU') -> bool:
    """Whether a finished run is there: ratios logged by
    ``DynOPoolRatioHook`` (up to ``max_iters`` when given) and a validation
    result holding ``key``."""
    from mmdynopool.engine.hooks.ratio_hook import load_ratio_records
    try:
        last = load_ratio_records(work_dir)[-1]
    except (OSError, ValueError):
        return False
    if max_iters is not None and last['iter'] < max_iters:
        return False
    return bool(read_val_metrics(work_dir, key))


def resolve_config(config: str) -> str:
    """A config path as given, or relative to the repository."""
    if osp.isabs(config) or osp.exists(config):
        return config
    return osp.join(REPO_ROOT, config)


def train_command(config: str, work_dir: str, seed: int,
                  cfg_options: Sequence[str] = ()) -> List[str]:
    return [
        sys.executable,
        osp.join(REPO_ROOT, 'tools', 'train.py'), config, '--work-dir',
        work_dir, '--cfg-options', f'randomness.seed={seed}', *cfg_options
    ]


def train_all(tasks: Sequence[TrainTask], jobs: int = 1,
              tag: str = 'train') -> None:
    """Run every task's training, ``jobs`` side by side, each with
    ``OMP_NUM_THREADS`` set to its share of the CPUs (unless the variable
    is set already); a task's output goes to ``<work_dir>/train_stdout.log``.
    A failed training raises, naming that log."""
    env = dict(os.environ)
    if jobs > 1 and 'OMP_NUM_THREADS' not in env:
        cpus = len(os.sched_getaffinity(0)) if hasattr(
            os, 'sched_getaffinity') else (os.cpu_count() or 1)
        env['OMP_NUM_THREADS'] = str(max(1, cpus // jobs))

    def train(task: TrainTask) -> None:
        os.makedirs(task.work_dir, exist_ok=True)
        command = train_command(task.config, task.work_dir, task.seed,
                                task.cfg_options)
        print(f'[{tag}] {task.label} seed {task.seed}: ' + ' '.join(command),
              flush=True)
        log_path = osp.join(task.work_dir, 'train_stdout.log')
        with open(log_path, 'w') as log:
            proc = subprocess.run(command, stdout=log,
                                  stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                  env=env)
        if proc.returncode != 0:
            raise RuntimeError(f'training failed (exit {proc.returncode}); '
                               f'see {log_path}')

    if jobs > 1 and len(tasks) > 1:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(train, tasks))
    else:
        for task in tasks:
            train(task)


def max_iters_of(cfg_options: Sequence[str]) -> Optional[int]:
    """``train_cfg.max_iters`` when the options set it."""
    for option in cfg_options:
        if option.startswith('train_cfg.max_iters='):
            return int(option.split('=', 1)[1])
    return None


def add_run_args(parser: argparse.ArgumentParser, work_dir: str,
                 layout: str, json_what: str = 'the results') -> None:
    """The options every seed study takes: ``--seeds``, ``--work-dir``
    (``layout``: where a run goes under it), ``--reuse``, ``--jobs``,
    ``--no-train``, ``--json-out`` and ``--cfg-options``."""
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--work-dir', default=work_dir,
                        help=f'runs go to {layout}')
    parser.add_argument('--reuse', action='store_true',
                        help='do not retrain runs that already finished')
    parser.add_argument('--jobs', type=int, default=1,
                        help='trainings run side by side (each gets '
                        'OMP_NUM_THREADS = CPUs / jobs)')
    parser.add_argument('--no-train', action='store_true',
                        help='only read existing runs (missing ones fail)')
    parser.add_argument('--json-out', help=f'also write {json_what} as JSON')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='passed on to tools/train.py (key=value)')
