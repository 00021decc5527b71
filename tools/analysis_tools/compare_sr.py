"""Train the offline super-resolution recipes over several seeds and compare
each model with the pixel-shuffle baseline of the same seed and scale.

Every run goes through ``tools/train.py CONFIG --work-dir DIR --cfg-options
randomness.seed=S`` and lives in ``WORK_DIR/<model>/x<scale>/seed<S>``; the
table gives, per scale and model, PSNR and SSIM on the held-out photos (the
recipe's validation, Y channel), the difference to the baseline of the same
seed, the GMACs of the last training record relative to the baseline's and
the learned ``(r_h, r_w)`` of every DynOPool.

A model is ``NAME`` (one of :data:`MODELS`) or ``NAME=TEMPLATE``, a config
path with ``{scale}``. Examples::

    python tools/analysis_tools/compare_sr.py --scales 2 4 --seeds 0 1 2
    python tools/analysis_tools/compare_sr.py --scales 2 --seeds 0 1 2 \\
        --models dynopool \\
        'frozen=configs/dynopool_sr/study/edsr-dynopool-frozen_x{scale}c32b4_1xb8-600iter_skimage.py' \\
        --reuse --jobs 2 --json-out work_dirs/sr_compare/summary.json
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from mmdynopool.engine.hooks.ratio_hook import load_ratio_records
from mmdynopool.utils.seed_runs import (TrainTask, add_run_args,
                                        max_iters_of, mean_std,
                                        read_val_metrics, resolve_config,
                                        run_complete, train_all)

RECIPE = 'configs/dynopool_sr/{name}_x{{scale}}c32b4_1xb8-600iter_skimage.py'
MODELS = {
    'pixel-shuffle': RECIPE.format(name='edsr'),
    'dynopool': RECIPE.format(name='edsr-dynopool'),
}
BASELINE = 'pixel-shuffle'
DATASET = 'skimage'  # the held-out photos' dataset_name


def parse_model(spec: str) -> Tuple[str, str]:
    """``NAME`` of :data:`MODELS` or ``NAME=TEMPLATE`` -> (name,
    template)."""
    if '=' in spec:
        name, template = spec.split('=', 1)
        if not name or '{scale}' not in template:
            raise ValueError(f'--models {spec!r}: give NAME=TEMPLATE with '
                             '{scale} in the template')
        return name, template
    if spec not in MODELS:
        raise ValueError(f'--models {spec!r}: not one of {sorted(MODELS)}; '
                         'or give NAME=TEMPLATE (a config path with {scale})')
    return spec, MODELS[spec]


def run_dir(work_root: str, model: str, scale: int, seed: int) -> str:
    return osp.join(work_root, model, f'x{scale}', f'seed{seed}')


def summarise_run(work_dir: str, dataset: str = DATASET) -> Optional[dict]:
    """``{"PSNR", "SSIM", "gmacs", "ratios": {layer: (r_h, r_w)}}`` of a
    finished run; None when it has not validated (or logged no ratios)."""
    metrics = read_val_metrics(work_dir, f'{dataset}/PSNR')
    try:
        last = load_ratio_records(work_dir)[-1]
    except (OSError, ValueError):
        return None
    if not metrics:
        return None
    return {
        'iter': last['iter'],
        'PSNR': metrics[f'{dataset}/PSNR'],
        'SSIM': metrics.get(f'{dataset}/SSIM'),
        'gmacs': last['gmacs'],
        'ratios': {
            name: (layer['r_h'], layer['r_w'])
            for name, layer in last['layers'].items()
        }
    }


def run_all(models: Dict[str, str], scales: Sequence[int],
            seeds: Sequence[int], work_root: str, reuse: bool = False,
            cfg_options: Sequence[str] = (), jobs: int = 1,
            train: bool = True) -> Dict[str, Dict[int, List[dict]]]:
    """Train (or reuse) every model x scale x seed; ``{model: {scale:
    [summary per seed]}}``."""
    todo, wanted = [], max_iters_of(cfg_options)
    for name, template in models.items():
        for scale in scales:
            config = resolve_config(template.format(scale=scale))
            for seed in seeds:
                work_dir = run_dir(work_root, name, scale, seed)
                if reuse and run_complete(work_dir, wanted,
                                          f'{DATASET}/PSNR'):
                    print(f'[sr] {name} x{scale} seed {seed}: reusing '
                          f'{work_dir}', flush=True)
                elif train:
                    todo.append(
                        TrainTask(f'{name} x{scale}', seed, config, work_dir,
                                  list(cfg_options)))
    train_all(todo, jobs, 'sr')
    runs = {}
    for name in models:
        runs[name] = {}
        for scale in scales:
            summaries = []
            for seed in seeds:
                work_dir = run_dir(work_root, name, scale, seed)
                summary = summarise_run(work_dir)
                if summary is None:
                    raise FileNotFoundError(
                        f'no finished run in {work_dir} (train it: drop '
                        '--no-train)')
                summaries.append(summary)
            runs[name][scale] = summaries
    return runs


def compare(runs: Dict[str, Dict[int, List[dict]]], seeds: Sequence[int],
            baseline: str = BASELINE) -> Dict[str, Dict[int, dict]]:
    """Per model and scale: mean +- std of PSNR, SSIM, the PSNR difference
    to the baseline of the same seed, the seeds ahead, GMACs relative to the
    baseline's, and the mean learned ratios."""
    base = runs[baseline]
    result = {}
    for name, per_scale in runs.items():
        result[name] = {}
        for scale, summaries in per_scale.items():
            deltas = [
                s['PSNR'] - b['PSNR'] for s, b in zip(summaries, base[scale])
            ]
            gmacs = [
                s['gmacs'] / b['gmacs']
                for s, b in zip(summaries, base[scale])
            ]
            layers = list(summaries[0]['ratios'])
            result[name][scale] = {
                'seeds': list(seeds),
                'PSNR': mean_std([s['PSNR'] for s in summaries]),
                'SSIM': mean_std([s['SSIM'] for s in summaries]),
                'per_seed_PSNR': [s['PSNR'] for s in summaries],
                'delta': mean_std(deltas),
                'per_seed_delta': deltas,
                'seeds_ahead': sum(d > 0 for d in deltas),
                'gmacs_rel': mean_std(gmacs),
                'max_gmacs_rel': max(gmacs),
                'ratios': {
                    layer: tuple(
                        mean_std([s['ratios'][layer][axis]
                                  for s in summaries]) for axis in (0, 1))
                    for layer in layers
                }
            }
    return result


def format_table(result: Dict[str, Dict[int, dict]],
                 baseline: str = BASELINE) -> str:
    lines = []
    header = (f"{'scale':<5} {'model':<22} {'PSNR':>13} {'SSIM':>15} "
              f"{'dPSNR':>12} {'ahead':>6} {'GMACs/base':>11}  per-seed dPSNR")
    lines += [header, '-' * len(header)]
    scales = sorted({s for per_scale in result.values() for s in per_scale})
    for scale in scales:
        for name, per_scale in result.items():
            e = per_scale[scale]
            per_seed = ' '.join(f'{d:+.2f}' for d in e['per_seed_delta'])
            delta = '-' if name == baseline else \
                f"{e['delta'][0]:+.2f}+-{e['delta'][1]:.2f}"
            ahead = '-' if name == baseline else \
                f"{e['seeds_ahead']}/{len(e['seeds'])}"
            lines.append(
                f"x{scale:<4} {name:<22} {e['PSNR'][0]:>7.2f}+-"
                f"{e['PSNR'][1]:.2f} {e['SSIM'][0]:>8.4f}+-"
                f"{e['SSIM'][1]:.4f} {delta:>12} {ahead:>6} "
                f"{e['gmacs_rel'][0]:>11.3f}  "
                f"{per_seed if name != baseline else ''}")
            for layer, (r_h, r_w) in e['ratios'].items():
                lines.append(f"{'':<6}{layer:<22} r = ({r_h[0]:.3f}+-"
                             f'{r_h[1]:.3f}, {r_w[0]:.3f}+-{r_w[1]:.3f})')
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Compare SR models with the pixel-shuffle baseline '
        'over seeds')
    parser.add_argument('--scales', nargs='+', type=int, default=[2, 4])
    parser.add_argument('--models', nargs='+', default=['dynopool'],
                        help=f'NAME ({", ".join(MODELS)}) or NAME=TEMPLATE '
                        '(a config path with {scale}); the baseline is '
                        'always trained too')
    parser.add_argument('--baseline', default=BASELINE,
                        help='NAME or NAME=TEMPLATE of the model the others '
                        'are compared with')
    add_run_args(parser, 'work_dirs/sr_compare',
                 'WORK_DIR/<model>/x<scale>/seed<S>')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    baseline, base_template = parse_model(args.baseline)
    models = {baseline: base_template}
    for spec in args.models:
        name, template = parse_model(spec)
        models[name] = template
    runs = run_all(models, args.scales, args.seeds, args.work_dir,
                   args.reuse, args.cfg_options, args.jobs,
                   train=not args.no_train)
    result = compare(runs, args.seeds, baseline)
    print(f'\nPSNR / SSIM on the held-out photos (Y), mean+-std over seeds '
          f'{args.seeds}; dPSNR = model - {baseline} of the same seed:\n')
    print(format_table(result, baseline))
    if args.json_out:
        os.makedirs(osp.dirname(osp.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, 'w', encoding='utf-8') as f:
            json.dump({'runs': runs, 'compare': result}, f, indent=1)
    return result


if __name__ == '__main__':
    main()
