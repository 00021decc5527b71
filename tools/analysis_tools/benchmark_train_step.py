"""Training-step time of a DynOPool segmentor against its mmseg baseline.

Both models are built from their configs in the same process (pretrained
weights removed, so nothing is downloaded; SyncBN reverted to BN for a
single process) and trained on the same synthetic batch: random ``uint8``
images of ``--crop`` and random labels, through ``model.train_step`` with
each config's own optimiser wrapper (for DynOPool: its constructor, the
GMACs budget loss included), i.e. data preprocessing + forward + losses +
backward + optimiser step, exactly what the runner does per iteration.
After ``--warmup`` steps of each, the two models are timed in alternation
(A B A B ...) so that both see the same machine load, and the median of
``--iters`` steps is reported, with the ratio DynOPool / baseline.

Example (CPU-sized)::

    python tools/analysis_tools/benchmark_train_step.py \\
        --crop 256 256 --batch 2 --iters 5 --device cpu
"""
import argparse
import copy
import json
import logging
import os
import os.path as osp
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.hub import get_config
from mmengine.logging import MMLogger
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope

import mmdynopool  # noqa: F401  (compat layers; registers the modules)
from mmdynopool.ops import DynOPool
from mmdynopool.ops.functional import BACKEND_ENV
from mmdynopool.utils import enable_amp, remove_pretrained

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DYNOPOOL_CONFIG = osp.join(
    REPO, 'configs', 'dynopool',
    'fcn_dynopool-r50-d8_4xb4-80k_ade20k-512x512.py')
BASELINE_CONFIG = 'mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Training-step time: DynOPool segmentor vs mmseg '
        'baseline')
    parser.add_argument('--config', default=DYNOPOOL_CONFIG,
                        help='the DynOPool config')
    parser.add_argument('--baseline', default=BASELINE_CONFIG,
                        help='the baseline config (mmseg::... or a path)')
    parser.add_argument('--crop', type=int, nargs=2, default=(512, 512),
                        metavar=('H', 'W'), help='training crop')
    parser.add_argument('--batch', type=int, default=2,
                        help='images per step')
    parser.add_argument('--iters', type=int, default=10,
                        help='timed steps per model (the median is shown)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed steps per model first')
    parser.add_argument('--device', default='cuda' if
                        torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--fixed-ratios', action='store_true',
        help='put every alpha back to its initial value after each step '
        '(its gradient and update are still computed), so that the feature '
        'sizes stay those of the baseline: without it the ratios learn from '
        'the synthetic batch and the sizes, hence the work, drift')
    parser.add_argument(
        '--amp', choices=('fp16', 'bf16'),
        help='automatic mixed precision for both models '
        '(AmpOptimWrapper in this dtype, as tools/train.py --amp)')
    parser.add_argument(
        '--cudnn-benchmark', action='store_true',
        help='torch.backends.cudnn.benchmark = True, as the mmseg recipes '
        'set it (env_cfg.cudnn_benchmark): every new feature size is then '
        'benchmarked once per convolution, which shows in the max step time '
        'while the ratios learn')
    parser.add_argument('--out', help='also write the results as JSON here')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='overrides applied to both configs (e.g. '
        'model.backbone.depth=...)')
    args = parser.parse_args(argv)
    if min(args.crop) < 1 or args.batch < 1 or args.iters < 1 or \
            args.warmup < 0:
        parser.error('--crop, --batch, --iters must be >= 1, --warmup >= 0')
    if args.amp and torch.device(args.device).type != 'cuda':
        parser.error(f'--amp needs a CUDA device (mmengine\'s '
                     f'AmpOptimWrapper), got --device {args.device}; drop '
                     '--amp to time fp32 steps on this device')
    return args


def load_config(path: str, cfg_options: Optional[dict],
                amp: Optional[str] = None) -> Config:
    cfg = get_config(path) if '::' in path else Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if amp:
        enable_amp(cfg)
        cfg.optim_wrapper.dtype = {'fp16': 'float16',
                                   'bf16': 'bfloat16'}[amp]
    return cfg


def build(cfg: Config, crop: Sequence[int], device: torch.device):
    """The model (train mode, on ``device``) and its optimiser wrapper."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = copy.deepcopy(cfg.model)
    remove_pretrained(model_cfg)
    if model_cfg.get('data_preprocessor') is not None:
        model_cfg.data_preprocessor['size'] = tuple(crop)
    model = MODELS.build(model_cfg)
    if hasattr(model, 'init_weights'):
        model.init_weights()
    model = revert_sync_batchnorm(model).to(device).train()
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(
        cfg.optim_wrapper))
    return model, optim_wrapper


def num_classes(model: nn.Module) -> int:
    head = getattr(model, 'decode_head', None)
    if isinstance(head, nn.ModuleList):
        head = head[-1]
    return int(getattr(head, 'num_classes', 2))


def synthetic_batch(batch: int, crop: Sequence[int], classes: int,
                    seed: int) -> Dict[str, list]:
    """What a segmentation dataloader yields: uint8 CHW images and
    ``SegDataSample``\\ s with ``gt_sem_seg`` (a few pixels ignored)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(seed)
    h, w = crop
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(
            torch.randint(0, 256, (3, h, w), generator=gen,
                          dtype=torch.uint8))
        label = torch.randint(0, classes, (1, h, w), generator=gen)
        label[:, :2] = 255
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label)
        sample.set_metainfo(
            dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                 scale_factor=(1.0, 1.0), flip=False, img_path=None))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def step_timer(model: nn.Module,
               optim_wrapper,
               data: dict,
               device: torch.device,
               fixed_ratios: bool = False) -> Callable[[], float]:
    alphas = [m.alpha for m in model.modules() if isinstance(m, DynOPool)]
    initial = [a.detach().clone() for a in alphas] if fixed_ratios else []

    def step() -> float:
        synchronize(device)
        start = time.perf_counter()
        losses = model.train_step(data, optim_wrapper)
        synchronize(device)
        elapsed = time.perf_counter() - start
        with torch.no_grad():  # untimed
            for alpha, value in zip(alphas, initial):
                alpha.copy_(value)
        if not all(torch.isfinite(v).all() for v in losses.values()):
            raise RuntimeError(f'non-finite losses: {losses}')
        return elapsed

    return step


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    # the optimiser constructors log every parameter group at INFO
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    device = torch.device(args.device)
    names = ['baseline', 'dynopool']
    configs = {
        'baseline': load_config(args.baseline, args.cfg_options, args.amp),
        'dynopool': load_config(args.config, args.cfg_options, args.amp)
    }
    steps, info = {}, {}
    for name in names:
        torch.manual_seed(args.seed)
        model, optim_wrapper = build(configs[name], args.crop, device)
        data = synthetic_batch(args.batch, args.crop, num_classes(model),
                               args.seed)
        steps[name] = step_timer(model, optim_wrapper, data, device,
                                 args.fixed_ratios)
        info[name] = dict(
            config=args.baseline if name == 'baseline' else args.config,
            params_m=sum(p.numel() for p in model.parameters()) / 1e6,
            dynopool_layers=sum(
                isinstance(m, DynOPool) for m in model.modules()))
    for _ in range(args.warmup):
        for name in names:
            steps[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    for _ in range(args.iters):  # alternate: both see the same load
        for name in names:
            times[name].append(steps[name]())

    result = dict(
        device=str(device),
        threads=torch.get_num_threads(),
        crop=list(args.crop),
        batch=args.batch,
        warmup=args.warmup,
        iters=args.iters,
        amp=args.amp,
        fixed_ratios=args.fixed_ratios,
        cudnn_benchmark=args.cudnn_benchmark,
        backend=os.environ.get(BACKEND_ENV) or 'auto',
        torch=torch.__version__)
    print(f"device {result['device']} (torch {result['torch']}, "
          f"{result['threads']} CPU threads), AMP {args.amp or 'off'}, "
          f"{'fixed' if args.fixed_ratios else 'learning'} ratios, "
          f"DynOPool backend {result['backend']}, cudnn.benchmark "
          f"{'on' if args.cudnn_benchmark else 'off'}, crop "
          f"{args.crop[0]}x"
          f"{args.crop[1]}, batch {args.batch}, warm-up {args.warmup}, "
          f'median of {args.iters} train steps '
          '(preprocess + forward + losses + backward + optimiser step)')
    for name in names:
        median = statistics.median(times[name])
        result[name] = dict(info[name], s_per_iter=median,
                            min=min(times[name]), max=max(times[name]),
                            times=times[name])
        print(f"{name:9s} {info[name]['config']}\n"
              f"          {median:.4f} s/iter (min {min(times[name]):.4f}, "
              f"max {max(times[name]):.4f}), "
              f"{info[name]['params_m']:.2f} M params, "
              f"{info[name]['dynopool_layers']} DynOPool layers")
    result['ratio'] = result['dynopool']['s_per_iter'] / \
        result['baseline']['s_per_iter']
    print(f"ratio dynopool / baseline: {result['ratio']:.3f}")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
