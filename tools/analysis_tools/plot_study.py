"""Figures of the ratio-search study (configs/demo/STUDY.md).

* ``snr.png``: per DynOPool layer, the batch-to-batch signal-to-noise of the
  task gradient along the aspect direction, and the size of the budget
  term's gradient relative to the task gradient's spread, for each probe
  of ``alpha_grad_snr.py`` (``--snr LABEL=JSON``);
* ``trajectories.png``: ``r_h`` and ``r_w`` of chosen layers over the
  iterations, one line per seed, for each recipe (``--runs LABEL=DIR``,
  DIR holding ``seed*/dynopool_ratios.json``);
* ``delta_per_seed.png``: mIoU minus the fixed-stride twin's, per seed, for
  each recipe (``--summary LABEL=JSON``, from ``compare_ratios.py
  --baseline --json-out``), with the GMACs relative to the twin's.

Example::

    python tools/analysis_tools/plot_study.py --out configs/demo/study \\
        --snr 'init, r=0.5=work_dirs/study/snr/init_r0.5.json' \\
        --runs 'matched=work_dirs/study/matched/dynopool/stretched' \\
        --summary 'matched=work_dirs/study/matched/summary.json'
"""
import argparse
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from mmdynopool.engine.hooks.ratio_hook import \
    load_ratio_records  # noqa: E402


def labelled(items: Sequence[str]) -> List[Tuple[str, str]]:
    """``LABEL=PATH`` pairs (the last '=' splits)."""
    pairs = []
    for item in items:
        if '=' not in item:
            raise ValueError(f'expected LABEL=PATH, got {item!r}')
        label, path = item.rsplit('=', 1)
        pairs.append((label, path))
    return pairs


def plot_snr(probes: Sequence[Tuple[str, str]], path: str) -> None:
    results = []
    for label, file in probes:
        with open(file, encoding='utf-8') as f:
            results.append((label, json.load(f)))
    layers = [k[:-len('.aspect')] for k in results[0][1]['alpha']
              if k.endswith('.aspect')]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / len(results)
    for i, (label, result) in enumerate(results):
        xs = [j + i * width for j in range(len(layers))]
        snr = [result['alpha'][f'{n}.aspect']['task']['snr'] for n in layers]
        axes[0].bar(xs, snr, width, label=label)
        ratio = []
        for n in layers:
            entry = result['alpha'][f'{n}.h']
            budget = abs(entry.get('budget', {}).get('mean', 0.0))
            ratio.append(budget / entry['task']['std'])
        axes[1].bar(xs, ratio, width, label=label)
    for ax in axes:
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(layers))])
        ax.set_xticklabels([n.split('.')[-1] for n in layers])
    axes[0].set_title('task gradient, aspect direction: |mean| / std')
    axes[1].set_title('budget gradient / task gradient std (alpha_h)')
    axes[1].set_yscale('log')
    axes[1].axhline(1.0, color='k', lw=0.8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def load_trajectory(file: str, layer: str):
    records = load_ratio_records(file)
    its, r_h, r_w = [], [], []
    for record in records:
        for name, values in record['layers'].items():
            if name.split('.')[-1] == layer:
                its.append(record['iter'])
                r_h.append(values['r_h'])
                r_w.append(values['r_w'])
    return its, r_h, r_w


def plot_trajectories(runs: Sequence[Tuple[str, str]], layers: Sequence[str],
                      path: str) -> None:
    fig, axes = plt.subplots(len(layers), len(runs),
                             figsize=(3.6 * len(runs), 2.6 * len(layers)),
                             squeeze=False, sharey=True)
    for col, (label, folder) in enumerate(runs):
        files = sorted(glob.glob(osp.join(folder, 'seed*',
                                          'dynopool_ratios.json')))
        for row, layer in enumerate(layers):
            ax = axes[row][col]
            for file in files:
                its, r_h, r_w = load_trajectory(file, layer)
                if its:
                    ax.plot(its, r_h, color='tab:blue', lw=0.9)
                    ax.plot(its, r_w, color='tab:red', lw=0.9)
            ax.axhline(0.5, color='k', lw=0.5, ls=':')
            ax.set_title(f'{label}: {layer}', fontsize=8)
            if row == len(layers) - 1:
                ax.set_xlabel('iteration')
    axes[0][0].plot([], [], color='tab:blue', label='r_h')
    axes[0][0].plot([], [], color='tab:red', label='r_w')
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_deltas(summaries: Sequence[Tuple[str, str]], path: str) -> None:
    entries = []
    for label, file in summaries:
        with open(file, encoding='utf-8') as f:
            per_seed = json.load(f).get('per_seed', {})
        for variant, entry in per_seed.items():
            entries.append((f'{label}\n{variant}', entry))
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(entries)), 3.8))
    for i, (label, entry) in enumerate(entries):
        deltas = [r['delta'] for r in entry['rows']]
        ax.scatter([i] * len(deltas), deltas, s=16, color='tab:blue')
        mean = entry['delta'][0]
        ax.plot([i - 0.3, i + 0.3], [mean, mean], color='k')
        ax.text(i, max(deltas) + 0.15,
                f"{mean:+.2f}\nGMACs {entry['gmacs_rel'][0]:.2f}x",
                ha='center', fontsize=7)
    ax.axhline(0, color='k', lw=0.6)
    ax.set_xticks(range(len(entries)))
    ax.set_xticklabels([e[0] for e in entries], fontsize=7)
    ax.set_ylabel('mIoU - fixed stride (same seed)')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, str]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True)
    parser.add_argument('--snr', nargs='*', default=[])
    parser.add_argument('--runs', nargs='*', default=[])
    parser.add_argument('--layers', nargs='+', default=['pool1', 'pool2'])
    parser.add_argument('--summary', nargs='*', default=[])
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    written = {}
    if args.snr:
        written['snr'] = osp.join(args.out, 'snr.png')
        plot_snr(labelled(args.snr), written['snr'])
    if args.runs:
        written['trajectories'] = osp.join(args.out, 'trajectories.png')
        plot_trajectories(labelled(args.runs), args.layers,
                          written['trajectories'])
    if args.summary:
        written['deltas'] = osp.join(args.out, 'delta_per_seed.png')
        plot_deltas(labelled(args.summary), written['deltas'])
    for name, path in written.items():
        print(f'{name}: {path}')
    return written


if __name__ == '__main__':
    main()
