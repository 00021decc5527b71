"""Benchmark DynOPool's forward + backward against max_pool2d.

The point is the *ratios*, not the times: DynOPool replaces a max-pool (or a
stride-2 convolution), so what matters is how much more a training step of
the resizing layer costs than the max-pool it replaces, on the same machine,
with the same threads, shapes and dtype. Absolute times vary with hardware.

Routes, each timed as forward + backward with a fixed output gradient:

* ``max_pool2d``: ``F.max_pool2d(x, 2)``, the baseline (ratio 1);
* ``DynOPool (ours)``: :func:`mmdynopool.ops.dynopool2d`, gradients for
  ``x`` and ``alpha``;
* ``interp+max_pool``: ``max_pool2d(interpolate(x, 2*size), 2)`` under
  autograd, gradient for ``x`` only (the deploy form; a lower bound);
* ``naive grid_sample``: :func:`mmdynopool.ops.dynopool2d_reference`, the
  spec written out with ``grid_sample`` and autograd (``x`` and ``alpha``).

The table shows the median of the timed runs and the best one, each with
its ratio to max_pool2d; the routes take turns, so a change in the load
affects them alike. On a busy machine (see the load average printed on top)
multi-threaded timings mislead: every parallel kernel may wait for a thread
that another process holds, which penalises routes made of many kernels
more than max_pool2d; ``--threads 1 --clock cpu`` (the thread's CPU time,
which the other processes do not inflate) and the best-of column are
steadier.

Example::

    python tools/analysis_tools/benchmark_dynopool.py --device cpu --threads 2
"""
import argparse
import os
import statistics
import time
from typing import Callable, List, Sequence, Tuple

import torch
import torch.nn.functional as F

from mmdynopool.ops import dynopool2d, dynopool2d_reference
from mmdynopool.ops.functional import output_size

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16,
          'fp16': torch.float16}
RATIOS = ((0.5, 0.5), (0.6, 1.4))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=('cpu', 'cuda', 'all'),
                        default='all', help='cuda runs only if available')
    parser.add_argument('--threads', type=int, default=2,
                        help='torch CPU threads')
    parser.add_argument('--repeat', type=int, default=10,
                        help='timed runs per route')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                        help="cpu: the calling thread's CPU time, for CPU "
                        'runs with --threads 1 on a busy machine')
    parser.add_argument('--cpu-shape', type=int, nargs=4,
                        default=(8, 64, 128, 128), metavar=('N', 'C', 'H',
                                                            'W'))
    parser.add_argument('--cuda-shape', type=int, nargs=4,
                        default=(32, 64, 256, 256), metavar=('N', 'C', 'H',
                                                             'W'))
    parser.add_argument('--cpu-dtypes', nargs='+', choices=DTYPES,
                        default=['fp32'])
    parser.add_argument('--cuda-dtypes', nargs='+', choices=DTYPES,
                        default=['fp32', 'bf16'])
    return parser.parse_args()


def routes(ratio: Tuple[float, float]) -> List[Tuple[str, Callable]]:
    """``(name, fn(x, alpha))`` for every route at one ratio."""

    def max_pool(x, alpha):
        return F.max_pool2d(x, 2)

    def interp_max_pool(x, alpha):
        size = (2 * output_size(x.shape[2], ratio[0]),
                2 * output_size(x.shape[3], ratio[1]))
        queries = F.interpolate(
            x, size=size, mode='bilinear', align_corners=False)
        return F.max_pool2d(queries, 2)

    return [('max_pool2d', max_pool), ('DynOPool (ours)', dynopool2d),
            ('interp+max_pool', interp_max_pool),
            ('naive grid_sample', dynopool2d_reference)]


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed_step(fn: Callable, x: torch.Tensor, alpha: torch.Tensor,
               grad: torch.Tensor, clock: Callable[[], float]) -> float:
    """Seconds of one forward + backward (gradients for ``x`` and, if it
    requires them, ``alpha``)."""
    inputs = (x, alpha) if alpha.requires_grad else (x, )
    synchronize(x.device)
    start = clock()
    torch.autograd.grad(fn(x, alpha), inputs, grad)
    synchronize(x.device)
    return clock() - start


def bench_case(device: torch.device, shape: Sequence[int],
               dtype: torch.dtype, ratio: Tuple[float, float],
               args) -> List[Tuple[str, List[float]]]:
    """``(route, seconds of each timed run)`` for all routes at one
    configuration; the routes take turns."""
    x = torch.randn(*shape, device=device, dtype=dtype, requires_grad=True)
    cases = []
    for name, fn in routes(ratio):
        learns_alpha = fn in (dynopool2d, dynopool2d_reference)
        alpha = torch.tensor([1 / ratio[0], 1 / ratio[1]], device=device,
                             requires_grad=learns_alpha)
        cases.append((name, fn, alpha, torch.randn_like(fn(x, alpha))))
    clock = time.perf_counter
    if args.clock == 'cpu' and device.type == 'cpu':
        clock = time.thread_time
    times = {name: [] for name, *_ in cases}
    for step in range(args.warmup + args.repeat):
        for name, fn, alpha, grad in cases:
            seconds = timed_step(fn, x, alpha, grad, clock)
            if step >= args.warmup:
                times[name].append(seconds)
    return [(name, times[name]) for name, *_ in cases]


def print_table(title: str, results: List[Tuple[str, List[float]]]) -> None:
    """Median and best forward + backward time per route, each with its
    ratio to the first route (max_pool2d)."""
    summaries = [(name, statistics.median(times), min(times))
                 for name, times in results]
    _, base_median, base_best = summaries[0]
    print(f'\n{title}')
    print(f'  {"route":<20}{"median ms":>11}{"x max_pool2d":>14}'
          f'{"best ms":>10}{"x max_pool2d":>14}')
    for name, median, best in summaries:
        print(f'  {name:<20}{median * 1e3:>11.2f}{median / base_median:>14.2f}'
              f'{best * 1e3:>10.2f}{best / base_best:>14.2f}')


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    configs = []
    if args.device in ('cpu', 'all'):
        configs += [('cpu', args.cpu_shape, d) for d in args.cpu_dtypes]
    if args.device in ('cuda', 'all'):
        if torch.cuda.is_available():
            configs += [('cuda', args.cuda_shape, d) for d in args.cuda_dtypes]
        else:
            print('CUDA is not available: skipping the cuda runs')
    print(f'torch {torch.__version__}, {args.threads} CPU threads, '
          f'{args.clock} clock on the CPU, {args.repeat} timed runs per '
          f'route, load average {os.getloadavg()[0]:.1f} on '
          f'{os.cpu_count()} CPUs')
    for device, shape, dtype_name in configs:
        device = torch.device(device)
        for ratio in RATIOS:
            results = bench_case(device, shape, DTYPES[dtype_name], ratio,
                                 args)
            print_table(
                f'{device.type} {dtype_name} {"x".join(map(str, shape))} '
                f'r=({ratio[0]}, {ratio[1]})', results)


if __name__ == '__main__':
    main()
