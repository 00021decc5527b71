"""Peak memory of one training step: DynOPool model vs. its fixed-stride
twin, at equal GMACs.

    python tools/analysis_tools/memory_report.py [--shape H W]
        [--batch-size N] [--device cpu|cuda] [--dynopool-config CFG]
        [--baseline-config CFG] [--out report.json]

Defaults: FCN R50-D8 (``configs/dynopool/fcn_dynopool-r50-d8_4xb4-80k_
ade20k-512x512.py`` against mmseg's ``fcn_r50-d8_4xb4-80k_ade20k-512x512``),
batch 2 at 128 x 128 on the CPU. Three models are measured, each in its own
subprocess (so one's peak cannot hide another's):

* ``fixed``: the mmseg baseline (fixed strides);
* ``dynopool-init``: the DynOPool model at its initial ratios (the same
  feature sizes as ``fixed``; the convolutions whose stride a DynOPool took
  over now run at the higher resolution, so its GMACs are higher);
* ``dynopool-equal``: the DynOPool model with the first DynOPool's ratio
  lowered (both axes, by bisection) until its GMACs match ``fixed``'s: the
  budget a GMACs target of the baseline would enforce.

GMACs are the convolution / linear MACs per image (what the GMACs budget
loss counts). Memory of one SGD step (forward, backward, step), measured
three ways:

* ``saved``: the tensors autograd keeps for backward (the activations; the
  weights excluded), counted once per storage by
  ``torch.autograd.graph.saved_tensors_hooks``: exact, any device;
* ``peak``: the largest total size of live tensors during forward and
  backward, weights and buffers excluded (torch's ``MemTracker``:
  activations, gradients, temporaries; allocator-independent);
* the process view: on CUDA ``torch.cuda.max_memory_allocated`` minus the
  memory allocated before the step; on the CPU the growth of the peak
  resident set size (``ru_maxrss``) over the size before the step (includes
  the allocator's behaviour and the momentum buffers created by the first
  step, hence coarser).

Weights are random (no network access): memory and MACs do not depend on
them.
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import time
from typing import List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DYNOPOOL_CONFIG = osp.join(
    ROOT, 'configs/dynopool/fcn_dynopool-r50-d8_4xb4-80k_ade20k-512x512.py')
BASELINE_CONFIG = 'mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py'
VARIANTS = ('fixed', 'dynopool-init', 'dynopool-equal')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Peak training-step memory: DynOPool vs fixed strides')
    parser.add_argument('--dynopool-config', default=DYNOPOOL_CONFIG)
    parser.add_argument('--baseline-config', default=BASELINE_CONFIG)
    parser.add_argument('--shape', type=int, nargs='+', default=[128, 128],
                        help='input H W (default 128 128)')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS),
                        choices=VARIANTS)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads in the workers')
    parser.add_argument('--out', help='also write the results as JSON')
    parser.add_argument('--worker', choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument('--stem-scale', type=float, default=1.0,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if len(args.shape) == 1:
        args.shape = args.shape * 2
    args.shape = tuple(args.shape)
    return args


# -- inside a worker ----------------------------------------------------------
def load_config(config: str):
    """``Config.fromfile`` that also takes ``package::path`` names."""
    import tempfile

    from mmengine.config import Config
    if '::' not in config:
        return Config.fromfile(config)
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'config.py')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(f'_base_ = {config!r}\n')
        return Config.fromfile(path)


def build(args, variant: str):
    import mmdynopool  # noqa: F401
    from mmdynopool.deploy import build_model
    config = args.baseline_config if variant == 'fixed' else \
        args.dynopool_config
    cfg = load_config(config)
    model = build_model(cfg, None, freeze=False).train()
    return model


def dynopool_layers(model):
    from mmdynopool.ops import DynOPool
    return [m for m in model.modules() if isinstance(m, DynOPool)]


def set_stem_scale(model, scale: float) -> None:
    """Multiply the first DynOPool's (initial) ratio by ``scale``."""
    import torch
    layers = dynopool_layers(model)
    if layers and scale != 1.0:
        with torch.no_grad():
            layers[0].alpha.div_(scale)


def conv_gmacs(model, shape, device='cpu') -> float:
    import torch

    from mmdynopool.models.losses import MACsRecorder
    recorder = MACsRecorder(model)
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, *shape, device=device), mode='tensor')
    finally:
        recorder.remove()
    return recorder.macs / 1e9


def batch(model, shape, batch_size, device):
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    num_classes = model.decode_head.num_classes
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch_size, 3, *shape, generator=g).to(device)
    samples = []
    for _ in range(batch_size):
        sample = SegDataSample(
            metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape))
        sample.gt_sem_seg = PixelData(data=torch.randint(
            0, num_classes, (1, *shape), generator=g).to(device))
        samples.append(sample)
    return inputs, samples


def rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(args) -> dict:
    import torch
    from torch.distributed._tools.mem_tracker import MemTracker
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build(args, args.worker).to(args.device)
    set_stem_scale(model, args.stem_scale)
    gmacs = conv_gmacs(model, args.shape, args.device)
    ratios = {
        name: tuple(round(r, 4) for r in m.ratio)
        for name, m in model.named_modules() if m in dynopool_layers(model)
    }
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    inputs, samples = batch(model, args.shape, args.batch_size, args.device)
    cuda = args.device == 'cuda'
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(tensor):
        """Count every storage autograd keeps for backward, once."""
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    tracker = MemTracker()
    tracker.track_external(model, optimizer)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = rss_bytes()
    start = time.perf_counter()
    with tracker:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            losses = model(inputs, samples, mode='loss')
            loss, _ = model.parse_losses(losses)
        loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize()
        process_peak = torch.cuda.max_memory_allocated() - before
    else:
        process_peak = peak_rss_bytes() - before
    seconds = time.perf_counter() - start
    peak = tensor_peak(tracker, args.device)
    params = sum(p.numel() for p in model.parameters())
    return dict(
        variant=args.worker,
        gmacs=gmacs,
        saved_mib=sum(saved.values()) / 2**20,
        peak_mib=(peak['Total'] - peak['PARAM'] - peak['BUFFER']) / 2**20,
        process_mib=process_peak / 2**20,
        step_s=seconds,
        loss=float(loss),
        params_m=params / 1e6,
        stem_scale=args.stem_scale,
        device=args.device,
        ratios=ratios)


def tensor_peak(tracker, device: str) -> dict:
    """Bytes per category (``PARAM``, ``GRAD``, ``ACT``, ``TEMP``, ``OPT``,
    ..., ``Total``) at the step's peak of live tensor memory."""
    snapshot = tracker.get_tracker_snapshot('peak')
    for dev, values in snapshot.items():
        if str(dev).startswith(device):
            return {
                str(key).split('.')[-1]: value
                for key, value in values.items()
            }
    raise RuntimeError(f'no memory was tracked on {device}')


# -- the driver ---------------------------------------------------------------
def run_worker(args, variant: str, stem_scale: float = 1.0) -> dict:
    command = [
        sys.executable,
        osp.abspath(__file__), '--worker', variant, '--shape',
        *map(str, args.shape), '--batch-size',
        str(args.batch_size), '--device', args.device, '--dynopool-config',
        args.dynopool_config, '--baseline-config', args.baseline_config,
        '--stem-scale',
        repr(stem_scale)
    ]
    if args.threads:
        command += ['--threads', str(args.threads)]
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, check=False)
    lines = [
        line for line in done.stdout.splitlines() if line.startswith('{')
    ]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f'worker {variant} failed:\n{done.stderr[-3000:]}')
    return json.loads(lines[-1])


def equal_gmacs_scale(args, target: float) -> float:
    """The first DynOPool's ratio scale at which the DynOPool model's GMACs
    are closest to ``target`` from below (bisection on a forward pass)."""
    import mmdynopool  # noqa: F401
    model = build(args, 'dynopool-init').eval()
    first = dynopool_layers(model)[0]
    alpha0 = first.alpha.detach().clone()

    def gmacs_at(scale: float) -> float:
        import torch
        with torch.no_grad():
            first.alpha.copy_(alpha0 / scale)
        return conv_gmacs(model, args.shape)

    low, high = 0.05, 1.0
    if gmacs_at(high) <= target:
        return high
    for _ in range(14):
        mid = (low + high) / 2
        if gmacs_at(mid) <= target:
            low = mid
        else:
            high = mid
    return low


def format_table(results: List[dict]) -> str:
    base = next((r for r in results if r['variant'] == 'fixed'), None)
    process = 'max alloc' if results and results[0].get(
        'device') == 'cuda' else 'RSS grow'
    lines = [
        f'{"model":<15} {"GMACs/img":>9} {"saved MiB":>9} {"vs fixed":>8} '
        f'{"peak MiB":>9} {"vs fixed":>8} {process:>9} {"step s":>7}'
    ]
    for r in results:
        rel = [
            f'{r[key] / base[key]:.3f}x' if base else '-'
            for key in ('saved_mib', 'peak_mib')
        ]
        lines.append(f'{r["variant"]:<15} {r["gmacs"]:>9.3f} '
                     f'{r["saved_mib"]:>9.1f} {rel[0]:>8} '
                     f'{r["peak_mib"]:>9.1f} {rel[1]:>8} '
                     f'{r["process_mib"]:>9.1f} {r["step_s"]:>7.1f}')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return []
    measure = 'max_memory_allocated' if args.device == 'cuda' else \
        'peak RSS growth'
    print(f'Training-step memory at batch {args.batch_size} x 3 x '
          f'{args.shape[0]} x {args.shape[1]} on {args.device} ({measure})')
    results = []
    for variant in args.variants:
        scale = 1.0
        if variant == 'dynopool-equal':
            fixed = next((r for r in results if r['variant'] == 'fixed'),
                         None) or run_worker(args, 'fixed')
            scale = equal_gmacs_scale(args, fixed['gmacs'])
            init = next(
                (r for r in results if r['variant'] == 'dynopool-init'),
                None)
            if scale == 1.0 and init is not None:
                # already within the budget at init: the same model
                results.append(dict(init, variant=variant))
                print(f'  {variant}: the initial ratios already meet '
                      f'{fixed["gmacs"]:.3f} GMACs (same as dynopool-init)')
                continue
        results.append(run_worker(args, variant, scale))
        print(f'  {variant}: done ({results[-1]["step_s"]:.1f} s step)',
              flush=True)
    print(format_table(results))
    for r in results:
        if r['variant'] != 'fixed':
            first = next(iter(r['ratios'].items()), None)
            if first:
                print(f'  {r["variant"]}: first DynOPool {first[0]} at r='
                      f'{first[1]} (ratio scale {r["stem_scale"]:.4f})')
    print('saved: tensors autograd keeps for backward (activations, '
          'weights excluded); peak: most live tensor memory during forward '
          '+ backward, weights excluded (torch MemTracker); ' +
          ('max alloc: torch.cuda.max_memory_allocated growth over the '
           'step' if args.device == 'cuda' else 'RSS grow: peak resident '
           'set growth of the process over the step (allocator included, '
           'momentum buffers too)'))
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == '__main__':
    main()
