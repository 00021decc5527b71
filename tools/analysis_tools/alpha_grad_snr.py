"""Signal-to-noise of DynOPool's alpha gradient over training batches.

For a model built from a config (optionally with trained weights and
hand-set ratios), the gradient of the task loss and of the budget loss is
taken on ``--batches`` independent training batches, separately. Per
parameter the script reports the mean over batches, the standard deviation
and ``SNR = |mean| / std`` (the size of the common direction relative to the
batch-to-batch scatter: what one optimiser step sees), for

* every DynOPool ``alpha`` (task loss, per axis),
* the budget loss on ``alpha`` (the same on every batch up to the sizes),
* the weights: the median element SNR of all other parameters, and the SNR of
  the whole weight vector (``|mean| / sqrt(mean squared deviation)``).

Example (weights of a trained fixed-stride twin, which loads into the
DynOPool model because a DynOPool at r = 0.5 is that max-pool)::

    python tools/analysis_tools/alpha_grad_snr.py \\
        configs/demo/dynopool-matched_toynet_stretched.py \\
        --checkpoint work_dirs/fixed/iter_600.pth --batches 32 \\
        --ratios 0.5 0.5 --json-out work_dirs/snr.json
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def summarise(samples: torch.Tensor) -> Dict[str, float]:
    """Mean, std (over dim 0) and SNR of a ``(batches,)`` tensor."""
    mean = float(samples.mean())
    std = float(samples.std(unbiased=True)) if len(samples) > 1 else 0.0
    return {
        'mean': mean,
        'std': std,
        'snr': abs(mean) / std if std > 0 else math.inf
    }


def weight_snr(samples: torch.Tensor) -> Dict[str, float]:
    """``samples``: (batches, params). Median element SNR and the SNR of
    the whole vector."""
    mean = samples.mean(0)
    std = samples.std(0, unbiased=True)
    valid = std > 0
    element = (mean[valid].abs() / std[valid])
    deviation = (samples - mean).pow(2).sum(1).mean().sqrt()
    return {
        'median_element_snr': float(element.median()) if valid.any() else 0.,
        'vector_snr': float(mean.norm() / deviation) if deviation > 0 else 0.
    }


def set_ratios(model, ratios: Sequence[float], layers: Optional[str]) -> None:
    from mmdynopool.ops import DynOPool
    pools = [(n, m) for n, m in model.named_modules()
             if isinstance(m, DynOPool)]
    for name, pool in pools:
        if layers and name.split('.')[-1] not in layers.split(','):
            continue
        r_h, r_w = ratios
        with torch.no_grad():
            pool.alpha.copy_(torch.tensor([1 / r_h, 1 / r_w]))


def measure(config: str,
            checkpoint: Optional[str] = None,
            batches: int = 32,
            ratios: Optional[Sequence[float]] = None,
            ratio_layers: Optional[str] = None,
            cfg_options: Optional[dict] = None,
            seed: int = 0) -> dict:
    sys.path.insert(0, REPO_ROOT)
    import mmdynopool  # noqa: F401  (registers the modules)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner, load_checkpoint
    from mmseg.registry import MODELS

    from mmdynopool.ops import DynOPool

    torch.manual_seed(seed)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=False,
                        revise_keys=[])
    if ratios:
        set_ratios(model, ratios, ratio_layers)
    loader_cfg = dict(cfg.train_dataloader)
    loader_cfg['sampler'] = dict(type='DefaultSampler', shuffle=True,
                                 seed=seed)
    loader = Runner.build_dataloader(loader_cfg, seed=seed)
    model.train()
    pools = [(n, m) for n, m in model.named_modules()
             if isinstance(m, DynOPool)]
    alphas = [m.alpha for _, m in pools]
    weights = [p for n, p in model.named_parameters()
               if p.requires_grad and not n.endswith('alpha')]
    task_alpha: List[torch.Tensor] = []
    budget_alpha: List[torch.Tensor] = []
    task_weight: List[torch.Tensor] = []
    iterator = iter(loader)
    for _ in range(batches):
        data = model.data_preprocessor(next(iterator), True)
        losses = model(**data, mode='loss')
        task = sum(v for k, v in losses.items()
                   if 'loss' in k and 'gmacs' not in k)
        budget = losses.get('loss_gmacs')
        grads = torch.autograd.grad(task, alphas + weights,
                                    allow_unused=True, retain_graph=True)
        task_alpha.append(torch.cat([g.detach().flatten() for g in
                                     grads[:len(alphas)]]))
        task_weight.append(torch.cat([
            (g if g is not None else torch.zeros_like(p)).detach().flatten()
            for g, p in zip(grads[len(alphas):], weights)
        ]))
        if budget is not None and budget.requires_grad:
            bgrads = torch.autograd.grad(budget, alphas, allow_unused=True)
            budget_alpha.append(torch.cat([
                (g if g is not None else torch.zeros_like(a)).flatten()
                for g, a in zip(bgrads, alphas)
            ]))
        model.zero_grad(set_to_none=True)
    task_alpha_t = torch.stack(task_alpha).double()
    result = {
        'config': config,
        'checkpoint': checkpoint,
        'batches': batches,
        'batch_size': loader_cfg.get('batch_size'),
        'ratios': {n: list(m.ratio) for n, m in pools},
        'alpha': {},
        'weights': weight_snr(torch.stack(task_weight).double())
    }
    budget_t = torch.stack(budget_alpha).double() if budget_alpha else None
    for i, (name, _) in enumerate(pools):
        for j, axis in enumerate('hw'):
            k = 2 * i + j
            entry = {'task': summarise(task_alpha_t[:, k])}
            if budget_t is not None:
                entry['budget'] = summarise(budget_t[:, k])
            result['alpha'][f'{name}.{axis}'] = entry
        # the aspect direction (alpha_h up, alpha_w down, area kept to first
        # order: d log alpha_h = -d log alpha_w): what the budget term does
        # not see on a square map
        a_h, a_w = (float(v) for v in pools[i][1].alpha.detach())
        aspect = task_alpha_t[:, 2 * i] * a_h - task_alpha_t[:, 2 * i + 1] * a_w
        result['alpha'][f'{name}.aspect'] = {'task': summarise(aspect)}
    return result


def format_result(result: dict) -> str:
    lines = [f"ratios: {result['ratios']}",
             f"{'alpha':<22}{'task mean':>11}{'task std':>10}{'SNR':>7}"
             f"{'budget':>10}{'|budget|/std':>13}"]
    for name, entry in result['alpha'].items():
        t = entry['task']
        b = entry.get('budget', {}).get('mean', float('nan'))
        lines.append(f"{name:<22}{t['mean']:>11.4f}{t['std']:>10.4f}"
                     f"{t['snr']:>7.3f}{b:>10.4f}"
                     f"{abs(b) / t['std'] if t['std'] else 0:>13.3f}")
    w = result['weights']
    lines.append(f"weights: median element SNR {w['median_element_snr']:.3f},"
                 f" vector SNR {w['vector_snr']:.3f}")
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--checkpoint')
    parser.add_argument('--batches', type=int, default=32)
    parser.add_argument('--ratios', type=float, nargs=2,
                        help='set (r_h, r_w) of the DynOPools first')
    parser.add_argument('--ratio-layers',
                        help='comma-separated layer names (e.g. pool1) the '
                        '--ratios apply to; default: all')
    parser.add_argument('--aggregation', choices=['max', 'avg'])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json-out')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    options = {}
    if args.aggregation:
        options['model.backbone.dynopool_cfg.aggregation'] = args.aggregation
    result = measure(args.config, args.checkpoint, args.batches, args.ratios,
                     args.ratio_layers, options, args.seed)
    result['aggregation'] = args.aggregation or 'config'
    print(format_result(result))
    if args.json_out:
        os.makedirs(osp.dirname(osp.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
