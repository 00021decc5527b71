"""Plot the learned DynOPool ratios of a run from its dynopool_ratios.json.

Writes two PNGs (matplotlib, Agg backend, no display needed):

* ``ratios.png``: every layer's ``r_h`` (solid) and ``r_w`` (dashed) over the
  training iterations, and the model's GMACs per image below;
* ``sizes.png``: the learned ``H x W`` of every DynOPool layer's output at the
  end of training next to the fixed-stride network's (every step halves the
  size), as bars and as rectangles drawn to scale.

Example::

    python tools/analysis_tools/plot_ratios.py \\
        work_dirs/dynopool_toynet_stretched --out work_dirs/plots
"""
import argparse
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

# The ratio file's one reader (its writer's module).
from mmdynopool.engine.hooks.ratio_hook import \
    load_ratio_records  # noqa: E402



def layer_names(records: Sequence[dict]) -> List[str]:
    names: List[str] = []
    for record in records:
        for name in record['layers']:
            if name not in names:
                names.append(name)
    return names


def short(name: str) -> str:
    return name.split('.')[-1]


def infer_input_size(
        records: Sequence[dict]) -> Optional[Tuple[int, int]]:
    """The input size of the first layer: as recorded (``in_h``,
    ``in_w``), or, in files without it, the smallest integer ``H`` with
    ``round(r_h * H) == h`` in every record (likewise ``W``; one record can
    leave a choice: at ``r = 0.32``, ``h = 20`` fits ``H`` = 61 to 64)."""
    for record in records:
        values = next(iter(record['layers'].values()), {})
        if values.get('in_h') and values.get('in_w'):
            return int(values['in_h']), int(values['in_w'])
    size = []
    for axis, ratio in (('h', 'r_h'), ('w', 'r_w')):
        low, high = 1.0, math.inf
        for record in records:
            values = next(iter(record['layers'].values()), {})
            if not values.get(axis) or not values.get(ratio):
                continue
            # round(r * H) == h  <=>  (h - 0.5) / r <= H < (h + 0.5) / r
            low = max(low, (values[axis] - 0.5) / values[ratio])
            high = min(high, (values[axis] + 0.5) / values[ratio])
        if high == math.inf:
            return None
        candidate = math.ceil(low - 1e-9)
        size.append(candidate if candidate < high else int(round(
            (low + high) / 2)))
    return size[0], size[1]


def fixed_stride_sizes(input_size: Tuple[int, int], num_layers: int,
                       stride: int = 2) -> List[Tuple[int, int]]:
    """Output sizes of ``num_layers`` fixed steps of ``stride`` (floor, as a
    stride-2 max-pool)."""
    sizes, (h, w) = [], input_size
    for _ in range(num_layers):
        h, w = max(1, h // stride), max(1, w // stride)
        sizes.append((h, w))
    return sizes


def plot_history(records: Sequence[dict], path: str,
                 title: str = '') -> str:
    names = layer_names(records)
    iters = [r['iter'] for r in records]
    fig, (ax_r, ax_g) = plt.subplots(
        2, 1, figsize=(7, 6), sharex=True,
        gridspec_kw=dict(height_ratios=(2, 1)))
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for i, name in enumerate(names):
        color = colors[i % len(colors)]
        for key, style in (('r_h', '-'), ('r_w', '--')):
            values = [
                r['layers'][name][key] if name in r['layers'] else None
                for r in records
            ]
            ax_r.plot(iters, values, style, color=color,
                      label=f'{short(name)} {key}')
    ax_r.axhline(0.5, color='gray', lw=0.8, ls=':')
    ax_r.set_ylabel('learned ratio r')
    ax_r.legend(ncol=2, fontsize=8)
    ax_r.set_title(title or 'DynOPool ratios (solid: r_h, dashed: r_w)')
    ax_g.plot(iters, [r['gmacs'] for r in records], color='k')
    ax_g.set_ylabel('GMACs / image')
    ax_g.set_xlabel('iteration')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_sizes(records: Sequence[dict], path: str,
               input_size: Optional[Tuple[int, int]] = None,
               stride: int = 2, title: str = '') -> str:
    """Bar chart and shapes to scale of the learned sizes of the last
    record, next to the fixed-stride network's."""
    record = records[-1]
    names = list(record['layers'])
    input_size = input_size or infer_input_size(records)
    learned = [(record['layers'][n]['h'], record['layers'][n]['w'])
               for n in names]
    fixed = fixed_stride_sizes(input_size, len(names), stride) \
        if input_size else None
    fig, (ax_b, ax_s) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = list(range(len(names)))
    width = 0.2
    bars = [('learned H', [s[0] or 0 for s in learned], -1.5, 'C0', None),
            ('learned W', [s[1] or 0 for s in learned], -0.5, 'C1', None)]
    if fixed:
        bars += [('fixed-stride H', [s[0] for s in fixed], 0.5, 'C0', '//'),
                 ('fixed-stride W', [s[1] for s in fixed], 1.5, 'C1', '//')]
    for label, values, offset, color, hatch in bars:
        ax_b.bar([i + offset * width for i in x], values, width,
                 label=label, color=color, hatch=hatch,
                 alpha=0.5 if hatch else 1.0, edgecolor='k', lw=0.5)
    ax_b.set_xticks(x)
    ax_b.set_xticklabels([short(n) for n in names])
    ax_b.set_ylabel('output size (pixels)')
    ax_b.legend(fontsize=8)
    ax_b.set_title(f"H x W per stage at iter {record['iter']}")
    # Shapes to scale: learned (filled) over fixed stride (dashed outline).
    gap, x0 = 4, 0
    top = max([h for h, _ in learned if h] +
              ([h for h, _ in fixed] if fixed else [1]))
    for i, name in enumerate(names):
        h, w = learned[i]
        fh, fw = fixed[i] if fixed else (0, 0)
        box = max(w or 0, fw)
        if h and w:
            ax_s.add_patch(Rectangle((x0, 0), w, h, color='C2', alpha=0.6))
        if fixed:
            ax_s.add_patch(Rectangle((x0, 0), fw, fh, fill=False, ls='--',
                                     ec='k'))
        ax_s.text(x0 + box / 2, top + 2, f'{short(name)}\n{h}x{w}'
                  + (f'\n(fixed {fh}x{fw})' if fixed else ''),
                  ha='center', va='bottom', fontsize=8)
        x0 += box + gap
    ax_s.set_xlim(-gap, x0)
    ax_s.set_ylim(0, top * 1.45 + 4)
    ax_s.set_aspect('equal')
    ax_s.set_xlabel('W')
    ax_s.set_ylabel('H')
    ax_s.set_title('shapes to scale (filled: learned, dashed: fixed)')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Plot DynOPool ratios from dynopool_ratios.json')
    parser.add_argument('work_dir',
                        help='work dir holding dynopool_ratios.json, or the '
                        'file itself')
    parser.add_argument('--out', help='output folder (default: WORK_DIR)')
    parser.add_argument('--input-size', type=int, nargs=2,
                        metavar=('H', 'W'),
                        help='network input size for the fixed-stride '
                        'sizes (default: inferred from the first layer)')
    parser.add_argument('--stride', type=int, default=2,
                        help='stride of the fixed-stride network')
    parser.add_argument('--title', default='', help='figure title')
    parser.add_argument('--prefix', default='',
                        help='prefix of the PNG file names')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, str]:
    args = parse_args(argv)
    records = load_ratio_records(args.work_dir)
    out = args.out or (args.work_dir if osp.isdir(args.work_dir) else
                       osp.dirname(osp.abspath(args.work_dir)))
    os.makedirs(out, exist_ok=True)
    paths = {
        'ratios':
        plot_history(records, osp.join(out, f'{args.prefix}ratios.png'),
                     args.title),
        'sizes':
        plot_sizes(records, osp.join(out, f'{args.prefix}sizes.png'),
                   tuple(args.input_size) if args.input_size else None,
                   args.stride, args.title)
    }
    for path in paths.values():
        print(f'wrote {path}')
    return paths


if __name__ == '__main__':
    main()
