"""Train the demo on the three toy variants over several seeds and compare the
learned DynOPool ratios with what the paper reports.

Every run goes through the ordinary entry point (``tools/train.py CONFIG
--work-dir DIR --cfg-options randomness.seed=S``) and leaves its
``dynopool_ratios.json`` (written by ``DynOPoolRatioHook``) in
``WORK_DIR/<variant>/seed<S>``. The table lists, per variant and layer, the
final ``r_h`` and ``r_w`` (mean +- sample std over seeds), the final GMACs
and the validation mIoU, and then checks the paper's two qualitative
findings:

(a) on vertically stretched images the receptive fields become wider than
    tall: ``r_h < r_w`` at most DynOPool layers (mean over seeds);
    (a') as a control, that anisotropy must come from the stretch: the mean
    ``log(r_w / r_h)`` over layers is larger on stretched than on the
    unstretched variants;
(b) early layers keep more resolution on tiled images (dense information)
    than on enlarged ones (sparse information): the mean
    ``sqrt(r_h * r_w)`` of every early layer is larger on tiled.

With ``--baseline`` the fixed-stride twins (``configs/demo/fixed-stride_*``)
are trained with the same seeds and compared in mIoU and GMACs.

Examples::

    python tools/analysis_tools/compare_ratios.py --seeds 0 1 2
    python tools/analysis_tools/compare_ratios.py --seeds 0 1 2 --reuse \\
        --baseline --jobs 2 --json-out work_dirs/demo_compare/summary.json
"""
import argparse
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from mmdynopool.engine.hooks.ratio_hook import load_ratio_records
from mmdynopool.utils.seed_runs import (TrainTask, add_run_args,
                                        max_iters_of, mean_std,
                                        read_val_metrics, resolve_config,
                                        run_complete, train_all)

VARIANTS = ('stretched', 'tiled', 'enlarged')
CONFIG_TEMPLATE = 'configs/demo/dynopool_toynet_{variant}.py'
BASELINE_TEMPLATE = 'configs/demo/fixed-stride_toynet_{variant}.py'


# -- reading runs ------------------------------------------------------------
def final_record(work_dir: str) -> dict:
    """The record of the last logged iteration."""
    return load_ratio_records(work_dir)[-1]


def summarise_run(work_dir: str) -> dict:
    """``{"gmacs", "mIoU", "iter", "layers": {name: {"r_h", "r_w", "h",
    "w"}}}`` of one finished run."""
    last = final_record(work_dir)
    metrics = read_val_metrics(work_dir)
    return {
        'iter': last['iter'],
        'gmacs': last['gmacs'],
        'mIoU': metrics.get('mIoU'),
        'layers': last['layers']
    }


# -- statistics ---------------------------------------------------------------
def layer_names(runs: Sequence[dict]) -> List[str]:
    """Layer names in network order (the order of the first run)."""
    names: List[str] = []
    for run in runs:
        for name in run['layers']:
            if name not in names:
                names.append(name)
    return names


def aggregate(runs: Sequence[dict]) -> dict:
    """Mean/std over seeds of one variant's runs (from
    :func:`summarise_run`)."""
    if not runs:
        raise ValueError('no run to aggregate')
    stats = {'num_runs': len(runs), 'layers': {}}
    for key in ('gmacs', 'mIoU'):
        values = [run[key] for run in runs if run.get(key) is not None]
        stats[key] = mean_std(values) if values else None
    for name in layer_names(runs):
        entries = [run['layers'][name] for run in runs if name in
                   run['layers']]
        layer = {}
        for key in ('r_h', 'r_w'):
            layer[key] = mean_std([e[key] for e in entries])
        layer['area'] = mean_std(
            [math.sqrt(e['r_h'] * e['r_w']) for e in entries])
        layer['h_lt_w_runs'] = sum(e['r_h'] < e['r_w'] for e in entries)
        stats['layers'][name] = layer
    return stats


def anisotropy(stat: dict) -> float:
    """Mean over layers of ``log(r_w / r_h)`` (of the seed means): > 0
    when the receptive fields are wider than tall."""
    values = [
        math.log(layer['r_w'][0] / layer['r_h'][0])
        for layer in stat['layers'].values()
    ]
    # nan without learnable layers (e.g. runs frozen from the start)
    return sum(values) / len(values) if values else float('nan')


def check_findings(stats: Dict[str, dict],
                   num_early: Optional[int] = None) -> List[dict]:
    """The paper's two findings on aggregated stats (see the module
    docstring). Each result: ``{"finding", "holds" (True/False/None when
    the variants needed are missing), "detail"}``."""
    results = []
    stretched = stats.get('stretched')
    if stretched is None:
        results.append(dict(finding='(a) stretched: r_h < r_w at most layers',
                            holds=None, detail='no stretched runs'))
    else:
        names = list(stretched['layers'])
        wider = [
            n for n in names
            if stretched['layers'][n]['r_h'][0] < stretched['layers'][n]
            ['r_w'][0]
        ]
        short = [w.split('.')[-1] for w in wider]
        runs = stretched['num_runs']
        per_seed = ', '.join(
            f"{n.split('.')[-1]} {stretched['layers'][n]['h_lt_w_runs']}/"
            f'{runs}' for n in names)
        results.append(
            dict(
                finding='(a) stretched: r_h < r_w at most layers',
                holds=len(wider) * 2 > len(names),
                detail=(f'mean r_h < mean r_w at {len(wider)}/{len(names)} '
                        f'layers ({", ".join(short) or "none"}); '
                        f'runs with r_h < r_w per layer: {per_seed}')))
    controls = {v: s for v, s in stats.items() if v != 'stretched'}
    if stretched is None or not controls:
        results.append(
            dict(finding='(a\') the anisotropy comes from the stretch',
                 holds=None, detail='needs stretched and other runs'))
    else:
        aniso = {v: anisotropy(s) for v, s in stats.items()}
        results.append(
            dict(
                finding='(a\') the anisotropy comes from the stretch',
                holds=all(aniso['stretched'] > aniso[v] for v in controls),
                detail='mean over layers of log(r_w / r_h): ' + ', '.join(
                    f'{v} {a:+.3f}' for v, a in aniso.items()) +
                ' (stretched must exceed the unstretched variants)'))
    tiled, enlarged = stats.get('tiled'), stats.get('enlarged')
    if tiled is None or enlarged is None:
        results.append(
            dict(finding='(b) early layers: ratio tiled > enlarged',
                 holds=None, detail='needs tiled and enlarged runs'))
    else:
        names = [n for n in tiled['layers'] if n in enlarged['layers']]
        if num_early is None:
            num_early = max(1, (len(names) + 1) // 2)
        early = names[:num_early]
        parts, holds = [], True
        for name in early:
            t = tiled['layers'][name]['area']
            e = enlarged['layers'][name]['area']
            holds = holds and t[0] > e[0]
            parts.append(f"{name.split('.')[-1]}: sqrt(r_h*r_w) tiled "
                         f'{t[0]:.3f}+-{t[1]:.3f} vs enlarged '
                         f'{e[0]:.3f}+-{e[1]:.3f}')
        results.append(
            dict(finding='(b) early layers: ratio tiled > enlarged',
                 holds=bool(early) and holds,
                 detail=f'early = first {len(early)} layer(s); ' +
                 '; '.join(parts)))
    return results


def fmt(value: Optional[Tuple[float, float]], digits: int = 3) -> str:
    if value is None:
        return '-'
    return f'{value[0]:.{digits}f}+-{value[1]:.{digits}f}'


def format_table(stats: Dict[str, dict]) -> str:
    """One line per variant and layer: mean+-std of r_h, r_w over seeds and
    the number of runs with r_h < r_w; then GMACs and mIoU per variant."""
    lines = []
    header = (f"{'variant':<10} {'layer':<16} {'r_h':>13} {'r_w':>13} "
              f"{'r_h<r_w':>8}")
    lines += [header, '-' * len(header)]
    for variant, stat in stats.items():
        for name, layer in stat['layers'].items():
            lines.append(
                f'{variant:<10} {name:<16} {fmt(layer["r_h"]):>13} '
                f'{fmt(layer["r_w"]):>13} '
                f'{layer["h_lt_w_runs"]:>4}/{stat["num_runs"]:<3}')
    lines.append('')
    header = f"{'variant':<10} {'runs':>4} {'GMACs':>17} {'mIoU':>13}"
    lines += [header, '-' * len(header)]
    for variant, stat in stats.items():
        lines.append(f'{variant:<10} {stat["num_runs"]:>4} '
                     f'{fmt(stat["gmacs"], 5):>17} '
                     f'{fmt(stat["mIoU"], 2):>13}')
    return '\n'.join(lines)


def format_findings(results: Sequence[dict]) -> str:
    words = {True: 'HOLDS', False: 'DOES NOT HOLD', None: 'NOT CHECKED'}
    return '\n'.join(f"{r['finding']}: {words[r['holds']]}\n    {r['detail']}"
                     for r in results)


def format_baseline(stats: Dict[str, dict], base: Dict[str, dict]) -> str:
    """DynOPool vs the fixed-stride twin, per variant."""
    header = (f"{'variant':<10} {'model':<13} {'GMACs':>17} {'mIoU':>13}")
    lines = [header, '-' * len(header)]
    for variant in stats:
        if variant not in base:
            continue
        for label, stat in (('DynOPool', stats[variant]),
                            ('fixed-stride', base[variant])):
            lines.append(f'{variant:<10} {label:<13} '
                         f'{fmt(stat["gmacs"], 5):>17} '
                         f'{fmt(stat["mIoU"], 2):>13}')
    return '\n'.join(lines)


def compare_seeds(runs: Dict[str, List[dict]], base: Dict[str, List[dict]],
                  seeds: Sequence[int]) -> Dict[str, dict]:
    """Per variant and seed: DynOPool's mIoU minus the fixed-stride twin's
    (same seed), its GMACs relative to the twin's, and the layers where
    ``r_h < r_w``; plus the mean +- std of the difference, the seeds ahead
    and the largest relative GMACs."""
    result = {}
    for variant, dyn_runs in runs.items():
        if variant not in base:
            continue
        rows = []
        for seed, dyn, fixed in zip(seeds, dyn_runs, base[variant]):
            if dyn.get('mIoU') is None or fixed.get('mIoU') is None:
                continue
            rows.append({
                'seed': seed,
                'mIoU': dyn['mIoU'],
                'fixed_mIoU': fixed['mIoU'],
                'delta': dyn['mIoU'] - fixed['mIoU'],
                'gmacs_rel': dyn['gmacs'] / fixed['gmacs'],
                'h_lt_w_layers': sum(v['r_h'] < v['r_w']
                                     for v in dyn['layers'].values()),
                'num_layers': len(dyn['layers'])
            })
        if not rows:
            continue
        result[variant] = {
            'rows': rows,
            'delta': mean_std([r['delta'] for r in rows]),
            'gmacs_rel': mean_std([r['gmacs_rel'] for r in rows]),
            'max_gmacs_rel': max(r['gmacs_rel'] for r in rows),
            'seeds_ahead': sum(r['delta'] > 0 for r in rows),
            'num_seeds': len(rows)
        }
    return result


def format_per_seed(per_seed: Dict[str, dict]) -> str:
    """The per-seed comparison of :func:`compare_seeds` as text."""
    header = (f"{'variant':<10} {'seed':>4} {'mIoU':>7} {'fixed':>7} "
              f"{'delta':>7} {'GMACs/fixed':>12} {'r_h<r_w':>8}")
    lines = [header, '-' * len(header)]
    for variant, entry in per_seed.items():
        for row in entry['rows']:
            lines.append(
                f"{variant:<10} {row['seed']:>4} {row['mIoU']:>7.2f} "
                f"{row['fixed_mIoU']:>7.2f} {row['delta']:>+7.2f} "
                f"{row['gmacs_rel']:>12.3f} "
                f"{row['h_lt_w_layers']:>4}/{row['num_layers']:<3}")
        lines.append(
            f"{variant:<10} mean delta {entry['delta'][0]:+.2f}+-"
            f"{entry['delta'][1]:.2f} mIoU, ahead in {entry['seeds_ahead']}/"
            f"{entry['num_seeds']} seeds, GMACs {entry['gmacs_rel'][0]:.3f}"
            f"+-{entry['gmacs_rel'][1]:.3f} of fixed stride (max "
            f"{entry['max_gmacs_rel']:.3f})")
    return '\n'.join(lines)


# -- running ------------------------------------------------------------------
def set_ratios_hook_index(config: str) -> int:
    """Index of the ``DynOPoolSetRatiosHook`` in ``config``'s
    ``custom_hooks`` (for ``--search-work-dir``)."""
    from mmengine.config import Config
    hooks = Config.fromfile(config).get('custom_hooks', None) or []
    for index, hook in enumerate(hooks):
        if hook.get('type') == 'DynOPoolSetRatiosHook':
            return index
    raise ValueError(f'{config} has no DynOPoolSetRatiosHook in custom_hooks'
                     ' (needed by --search-work-dir)')


def search_sources(search_work_dir: str, variant: str, seed: int,
                   offsets: Sequence[int] = (0, )) -> List[str]:
    """The finished search runs a retrain of ``seed`` starts from: seed
    ``seed + k`` for every ``k`` in ``offsets`` (several: their ratios are
    averaged by ``DynOPoolSetRatiosHook``)."""
    sources = []
    for offset in offsets:
        source = osp.abspath(
            osp.join(search_work_dir, 'dynopool', variant,
                     f'seed{seed + offset}'))
        if not run_complete(source):
            raise FileNotFoundError(f'no finished search run in {source} '
                                    f'(seed {seed} + offset {offset})')
        sources.append(source)
    return sources


def run_all(template: str, variants: Sequence[str], seeds: Sequence[int],
            work_root: str, reuse: bool, cfg_options: Sequence[str],
            tag: str, jobs: int = 1,
            search_work_dir: Optional[str] = None,
            search_seed_offsets: Sequence[int] = (0, )
            ) -> Dict[str, List[dict]]:
    """Train (or reuse) every variant x seed and summarise the runs.

    ``jobs`` runs train side by side, each with ``OMP_NUM_THREADS`` set to
    its share of the CPUs (unless the variable is set already).
    ``search_work_dir``: search, then retrain - the run of seed S takes its
    ratios from ``<search_work_dir>/dynopool/<variant>/seed<S>`` through
    the config's ``DynOPoolSetRatiosHook``; with ``search_seed_offsets``
    from the geometric mean of ``seed<S + k>`` for each offset ``k``."""
    todo = []
    for variant in variants:
        config = resolve_config(template.format(variant=variant))
        hook_index = set_ratios_hook_index(config) \
            if search_work_dir else None
        for seed in seeds:
            work_dir = osp.join(work_root, tag, variant, f'seed{seed}')
            options = list(cfg_options)
            if search_work_dir:
                sources = search_sources(search_work_dir, variant, seed,
                                         search_seed_offsets)
                value = sources[0] if len(sources) == 1 else \
                    '[' + ','.join(sources) + ']'
                options.append(f'custom_hooks.{hook_index}.source={value}')
            if reuse and run_complete(work_dir, max_iters_of(cfg_options)):
                print(f'[{tag}] {variant} seed {seed}: reusing {work_dir}',
                      flush=True)
            else:
                todo.append(TrainTask(variant, seed, config, work_dir,
                                      options))
    train_all(todo, jobs, tag)
    return {
        variant: [
            summarise_run(osp.join(work_root, tag, variant, f'seed{seed}'))
            for seed in seeds
        ]
        for variant in variants
    }


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Compare learned DynOPool ratios on the toy variants')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS),
                        choices=VARIANTS)
    add_run_args(parser, 'work_dirs/demo_compare',
                 'WORK_DIR/<tag>/<variant>/seed<S>', 'the stats')
    parser.add_argument('--config', default=CONFIG_TEMPLATE,
                        help='config path with {variant}')
    parser.add_argument('--baseline', action='store_true',
                        help='also train the fixed-stride twins')
    parser.add_argument('--baseline-config', default=BASELINE_TEMPLATE)
    parser.add_argument('--baseline-work-dir',
                        help='where the fixed-stride runs live (their '
                        'WORK_DIR/fixed-stride/<variant>/seed<S>); default: '
                        '--work-dir. Runs there are trained when missing.')
    parser.add_argument('--num-early', type=int, default=None,
                        help='layers counted as early for finding (b); '
                        'default: the first half (rounded up)')
    parser.add_argument('--search-work-dir',
                        help='search, then retrain: the --work-dir of a '
                        'search run; each seed of --config (which needs a '
                        'DynOPoolSetRatiosHook) starts from the ratios '
                        'that seed learned there')
    parser.add_argument('--search-seed-offsets', nargs='+', type=int,
                        default=[0],
                        help='with --search-work-dir: retrain seed S from '
                        'the geometric mean of the ratios of search seeds '
                        'S + k, for each k given (e.g. 0 100 200: three '
                        'searches a seed, run there with --seeds S, S+100, '
                        'S+200)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)

    raw = {}
    search_work_dir = args.search_work_dir

    def collect(template: str, tag: str,
                work_dir: Optional[str] = None,
                reuse: bool = False) -> Dict[str, dict]:
        work_dir = work_dir or args.work_dir
        if args.no_train:
            runs = {
                v: [
                    summarise_run(osp.join(work_dir, tag, v, f'seed{s}'))
                    for s in args.seeds
                ]
                for v in args.variants
            }
        else:
            runs = run_all(template, args.variants, args.seeds, work_dir,
                           args.reuse or reuse, args.cfg_options, tag,
                           args.jobs, search_work_dir if tag == 'dynopool'
                           else None, args.search_seed_offsets)
        raw[tag] = runs
        return {v: aggregate(r) for v, r in runs.items()}

    stats = collect(args.config, 'dynopool')
    findings = check_findings(stats, args.num_early)
    print(f'\nLearned ratios at the end of training, mean+-std over seeds '
          f'{args.seeds}:\n')
    print(format_table(stats))
    print('\nFindings of the paper:')
    print(format_findings(findings))
    result = {'seeds': args.seeds, 'dynopool': stats, 'findings': findings}
    if args.baseline:
        base = collect(args.baseline_config, 'fixed-stride',
                       args.baseline_work_dir,
                       reuse=args.baseline_work_dir is not None)
        print('\nDynOPool vs fixed stride (mean+-std over seeds):\n')
        print(format_baseline(stats, base))
        per_seed = compare_seeds(raw['dynopool'], raw['fixed-stride'],
                                 args.seeds)
        print('\nPer seed (delta = DynOPool - fixed stride, same seed):\n')
        print(format_per_seed(per_seed))
        result['fixed-stride'] = base
        result['per_seed'] = per_seed
    if args.json_out:
        os.makedirs(osp.dirname(osp.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
