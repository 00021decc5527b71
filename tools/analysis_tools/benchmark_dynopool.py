"""Benchmark DynOPool's forward + backward against max_pool2d and the
memory-traffic floor, per backend.

DynOPool replaces a max-pool (or a stride-2 convolution), so what matters is
how much more a training step of the resizing layer costs than the max-pool
it replaces, on the same machine, with the same threads, shapes and dtype;
and how far each backend is from the least it could cost. Absolute times
vary with hardware.

For each device, one table: a row per dtype and ratio ``r`` (default 0.5,
0.45, 0.55, (0.4, 0.7), 1, 2), each timed as forward + backward with a fixed
output gradient:

* ``max_pool2d``: ``F.max_pool2d(x, 2)``, gradient for ``x`` (the baseline);
* ``DynOPool (ours)``, per backend: ``dynopool2d(x, alpha, backend=...)``,
  gradients for ``x`` and ``alpha``; ``'torch'`` everywhere, ``'cpu'`` (the
  fused C++ kernels) on the CPU, ``'triton'`` on CUDA only (Triton runs CPU tensors only in its interpreter, which is a
  correctness tool, not a backend to time).

Each DynOPool time is given against max_pool2d (``x max_pool2d``) and against
the memory-traffic floor (``x floor``): the bytes that must move, forward
(read ``x``, write the output) and backward (read the output gradient, write
the input gradient), i.e. ``(2*|x| + 2*|out|) * itemsize``, at the device's
copy bandwidth, measured here as the best of a few ``y.copy_(x)`` of a large
buffer (bytes read + written per second).

Times are the median of the timed runs and the best one (``median/best``);
ratios are median against median and best against best. The routes take
turns, so a change in the load affects them alike. On a busy machine (see
the load average printed on top) multi-threaded timings mislead: every
parallel kernel may wait for a thread that another process holds, which
penalises routes made of many kernels more than max_pool2d; ``--threads 1
--clock cpu`` (the thread's CPU time, which the other processes do not
inflate) and the best-of ratios are steadier.

Example::

    python tools/analysis_tools/benchmark_dynopool.py --device cpu --threads 2
    python tools/analysis_tools/benchmark_dynopool.py --device cuda \\
        --ratios 0.5 0.4,0.7 1
"""
import argparse
import os
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from mmdynopool.ops import dynopool2d
from mmdynopool.ops.functional import output_size

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16,
          'fp16': torch.float16}
RATIOS = ((0.5, 0.5), (0.45, 0.45), (0.55, 0.55), (0.4, 0.7), (1.0, 1.0),
          (2.0, 2.0))
CPU_TRITON_SKIPPED = ('triton backend skipped on the CPU: Triton runs CPU '
                      'tensors only in its interpreter (TRITON_INTERPRET=1), '
                      'a correctness tool, not a backend to time')


def ratio_arg(text: str) -> Tuple[float, float]:
    """``r`` or ``r_h,r_w``."""
    try:
        values = [float(v) for v in text.split(',')]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) <= 0:
        raise argparse.ArgumentTypeError(
            f'a ratio is r or r_h,r_w with positive numbers, got {text!r}')
    return values[0], values[1]


def parse_args(argv: Optional[Sequence[str]] = None):
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
    parser.add_argument('--ratios', type=ratio_arg, nargs='+',
                        default=list(RATIOS), metavar='R',
                        help='r or r_h,r_w (default: %(default)s)')
    parser.add_argument('--cpu-shape', type=int, nargs=4,
                        default=(8, 64, 128, 128), metavar=('N', 'C', 'H',
                                                            'W'))
    parser.add_argument('--cuda-shape', type=int, nargs=4,
                        default=(32, 64, 256, 256), metavar=('N', 'C', 'H',
                                                             'W'))
    parser.add_argument('--cpu-dtypes', nargs='+', choices=DTYPES,
                        default=['fp32', 'bf16'])
    parser.add_argument('--cuda-dtypes', nargs='+', choices=DTYPES,
                        default=['fp32', 'bf16'])
    parser.add_argument('--copy-mib', type=int, default=None,
                        help='buffer of the bandwidth measurement (default: '
                        '256 MiB on the CPU, 1024 MiB on CUDA)')
    return parser.parse_args(argv)


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def make_clock(device: torch.device, clock: str) -> Callable[[], float]:
    if clock == 'cpu' and device.type == 'cpu':
        return time.thread_time
    return time.perf_counter


def copy_bandwidth(device: torch.device, mib: int,
                   clock: Callable[[], float], tries: int = 5) -> float:
    """Bytes per second that ``y.copy_(x)`` moves (read + write), best of
    ``tries`` on a ``mib`` MiB buffer."""
    x = torch.empty(mib << 20, dtype=torch.uint8, device=device)
    x.fill_(1)
    y = torch.empty_like(x)
    y.copy_(x)  # fault in the pages before timing
    best = float('inf')
    for _ in range(tries):
        synchronize(device)
        start = clock()
        y.copy_(x)
        synchronize(device)
        best = min(best, clock() - start)
    return 2 * x.numel() / max(best, 1e-9)


def triton_skip_reason(device: torch.device) -> Optional[str]:
    """Why the triton backend is not timed on ``device`` (None: it is)."""
    if device.type != 'cuda':
        return CPU_TRITON_SKIPPED
    from mmdynopool.ops import triton_backend
    if not triton_backend.triton_available():
        return 'triton backend skipped: triton does not import'
    return None


def cpu_skip_reason(device: torch.device) -> Optional[str]:
    """Why the cpu backend (the C++ kernels) is not timed on ``device``
    (None: it is)."""
    if device.type != 'cpu':
        return None  # (a CPU backend: nothing to say on other devices)
    from mmdynopool.ops import cpu_backend
    if not cpu_backend.kernels_available():
        return ('cpu backend skipped: its C++ kernels could not be built ('
                f'{cpu_backend.build_error()})')
    return None


def routes(device: torch.device) -> List[Tuple[str, Optional[str]]]:
    """``(name, backend)``: max_pool2d (backend None) and each backend that
    runs on ``device``."""
    names = [('max_pool2d', None), ('torch', 'torch')]
    if device.type == 'cpu' and cpu_skip_reason(device) is None:
        names.append(('cpu', 'cpu'))
    if triton_skip_reason(device) is None:
        names.append(('triton', 'triton'))
    return names


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
               args) -> Dict[str, List[float]]:
    """Seconds of each timed run per route at one configuration; the
    routes take turns."""
    x = torch.randn(*shape, device=device, dtype=dtype, requires_grad=True)
    cases = []
    for name, backend in routes(device):
        if backend is None:
            def fn(x, alpha):
                return F.max_pool2d(x, 2)
        else:
            def fn(x, alpha, backend=backend):
                return dynopool2d(x, alpha, backend=backend)
        alpha = torch.tensor([1 / ratio[0], 1 / ratio[1]], device=device,
                             requires_grad=backend is not None)
        cases.append((name, fn, alpha, torch.randn_like(fn(x, alpha))))
    clock = make_clock(device, args.clock)
    times = {name: [] for name, *_ in cases}
    for step in range(args.warmup + args.repeat):
        for name, fn, alpha, grad in cases:
            seconds = timed_step(fn, x, alpha, grad, clock)
            if step >= args.warmup:
                times[name].append(seconds)
    return times


def floor_seconds(shape: Sequence[int], ratio: Tuple[float, float],
                  dtype: torch.dtype, bandwidth: float) -> float:
    """The memory-traffic floor of forward + backward: read x and write
    the output, read the output gradient and write the input gradient."""
    n, c, h, w = shape
    out = n * c * output_size(h, ratio[0]) * output_size(w, ratio[1])
    itemsize = torch.empty((), dtype=dtype).element_size()
    return (2 * n * c * h * w + 2 * out) * itemsize / bandwidth


def pair(a: float, b: float) -> str:
    """``median/best`` with three significant digits each."""
    return f'{a:.3g}/{b:.3g}'


def print_table(title: str, rows: List[Tuple[str, Tuple[float, float],
                                             Sequence[int], float,
                                             Dict[str, List[float]]]],
                names: Sequence[str]) -> None:
    """One row per (dtype, ratio): the floor, max_pool2d, and per backend
    its time (median/best ms), ``x max_pool2d`` and ``x floor``."""
    print(f'\n{title}')
    header = (f'  {"dtype":<6}{"r":<12}{"out":>10} {"floor ms":>9}'
              f' {"max_pool2d ms":>15}')
    for name in names[1:]:
        header += (f' {name + " ms":>15} {"x max_pool2d":>13}'
                   f' {"x floor":>13}')
    print(header)
    for dtype_name, ratio, out, floor, times in rows:
        base = statistics.median(times['max_pool2d']), min(
            times['max_pool2d'])
        line = (f'  {dtype_name:<6}{f"({ratio[0]:g}, {ratio[1]:g})":<12}'
                f'{"x".join(map(str, out)):>10} {floor * 1e3:>9.3g}'
                f' {pair(base[0] * 1e3, base[1] * 1e3):>15}')
        for name in names[1:]:
            med, best = statistics.median(times[name]), min(times[name])
            line += (f' {pair(med * 1e3, best * 1e3):>15}'
                     f' {pair(med / base[0], best / base[1]):>13}'
                     f' {pair(med / floor, best / floor):>13}')
        print(line)


def main(argv: Optional[Sequence[str]] = None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    devices = []
    if args.device in ('cpu', 'all'):
        devices.append(('cpu', args.cpu_shape, args.cpu_dtypes))
    if args.device in ('cuda', 'all'):
        if torch.cuda.is_available():
            devices.append(('cuda', args.cuda_shape, args.cuda_dtypes))
        else:
            print('CUDA is not available: skipping the cuda runs')
    print(f'torch {torch.__version__}, {args.threads} CPU threads, '
          f'{args.clock} clock on the CPU, {args.repeat} timed runs per '
          f'route after {args.warmup} warm-up runs, load average '
          f'{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs')
    print('DynOPool (ours): dynopool2d(x, alpha, backend=...) forward + '
          'backward with the gradients of x and alpha; times median/best '
          'ms, ratios median/median and best/best')
    for device_name, shape, dtype_names in devices:
        device = torch.device(device_name)
        name = device_name if device.type == 'cpu' else \
            torch.cuda.get_device_name(device)
        mib = args.copy_mib or (256 if device.type == 'cpu' else 1024)
        bandwidth = copy_bandwidth(device, mib,
                                   make_clock(device, args.clock))
        for skipped in (cpu_skip_reason(device), triton_skip_reason(device)):
            if skipped:
                print(skipped)
        names = [route for route, _ in routes(device)]
        rows = []
        for dtype_name in dtype_names:
            dtype = DTYPES[dtype_name]
            for ratio in args.ratios:
                times = bench_case(device, shape, dtype, ratio, args)
                out = (output_size(shape[2], ratio[0]),
                       output_size(shape[3], ratio[1]))
                rows.append((dtype_name, ratio, out,
                             floor_seconds(shape, ratio, dtype, bandwidth),
                             times))
        print_table(
            f'{name}: {"x".join(map(str, shape))}, copy bandwidth '
            f'{bandwidth / 1e9:.1f} GB/s (best of 5 copies of {mib} MiB); '
            'floor = (2*|x| + 2*|out|) * itemsize / bandwidth', rows, names)


if __name__ == '__main__':
    main()
