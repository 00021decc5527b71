"""Count a DynOPool model's GMACs and parameters, at initialisation and at the
ratios learned in a checkpoint.

The model is built from the config with every pretrained-weight source
removed (``pretrained``, ``init_cfg=dict(type='Pretrained', ...)``): the
counts do not depend on the weights, and the tool never touches the network.
MACs are counted by mmengine's ``FlopAnalyzer`` (fvcore's counter: one
multiply-accumulate counts once) on a trace of ``model(inputs,
mode='tensor')`` for one ``3 x H x W`` image, so segmentation and
super-resolution configs both work; for mmseg segmentors that is the decode
head's logits before the final resize, as in mmseg's own ``get_flops.py``.
DynOPool layers count as the bilinear resampling they do (4 query points of
4 taps per output element). A table lists every DynOPool layer with its
ratio and the input/output size it had in the counted forward.

Examples::

    python tools/analysis_tools/get_flops.py \\
        configs/dynopool/fcn_dynopool-r50-d8_4xb4-80k_ade20k-512x512.py \\
        --shape 512 512
    python tools/analysis_tools/get_flops.py CONFIG --checkpoint CKPT \\
        --shape 512 1024
"""
import argparse
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import get_shape
from mmengine.config import Config, DictAction
from mmengine.hub import get_config
from mmengine.model import BaseModel, revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

import mmdynopool  # noqa: F401  (compat layers; registers the modules)
from mmdynopool.ops import DynOPool, StaticDynOPool
from mmdynopool.ops.functional import BACKEND_FUNCTIONS
from mmdynopool.utils import remove_pretrained

# The traced autograd Functions of the backends (MMDYNOPOOL_BACKEND).
DYNOPOOL_OPS = tuple(f'prim::PythonOp.{name}'
                     for _, name in BACKEND_FUNCTIONS.values())
# MACs per output element: 4 query points, each a 4-tap bilinear sample.
DYNOPOOL_MACS_PER_OUTPUT = 16


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='GMACs and parameters of a (DynOPool) model')
    parser.add_argument(
        'config',
        help='config file, or a package config such as '
        'mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py (the baseline)')
    parser.add_argument(
        '--checkpoint',
        help='also count at the ratios learned in this checkpoint')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[512, 512],
        help='input size: H W, or one number for a square (default 512 512)')
    parser.add_argument(
        '--in-channels',
        type=int,
        default=3,
        help='input channels (default 3)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. model.backbone.depth=18')
    args = parser.parse_args(argv)
    if len(args.shape) == 1:
        args.shape = args.shape * 2
    if len(args.shape) != 2 or min(args.shape) < 1:
        parser.error(f'--shape takes H W (or one size), got {args.shape}')
    return args


def build_model(cfg: Config) -> Tuple[nn.Module, List[str]]:
    """The config's model on the CPU in eval mode, randomly initialised."""
    removed = remove_pretrained(cfg.model)
    if cfg.get('default_scope') is not None:
        init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    # SyncBN needs a process group; plain BN counts the same.
    model = revert_sync_batchnorm(model)
    model.eval()  # (some mmseg backbones' train() returns None)
    return model, removed


class TensorMode(nn.Module):
    """``model(inputs, mode='tensor')`` with the outputs as a flat tuple of
    tensors, which is what the tracer of ``FlopAnalyzer`` accepts."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if isinstance(self.model, BaseModel):
            outputs = self.model(inputs, mode='tensor')
        else:
            outputs = self.model(inputs)
        return tuple(flatten_tensors(outputs))


def flatten_tensors(outputs: Any) -> List[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        return [t for item in outputs for t in flatten_tensors(item)]
    return []


def dynopool_macs(inputs: list, outputs: list) -> int:
    """FlopAnalyzer handle of the DynOPool autograd function."""
    return DYNOPOOL_MACS_PER_OUTPUT * math.prod(get_shape(outputs[0]))


def dynopool_rows(model: nn.Module) -> Dict[str, Dict[str, Any]]:
    """``{name: {'r_h', 'r_w'}}`` of every (static) DynOPool, in order."""
    return {
        name: dict(zip(('r_h', 'r_w'), module.ratio))
        for name, module in model.named_modules()
        if isinstance(module, (DynOPool, StaticDynOPool))
    }


def count_complexity(model: nn.Module,
                     shape: Sequence[int],
                     in_channels: int = 3) -> Dict[str, Any]:
    """GMACs and parameters of one ``in_channels x H x W`` image, and each
    DynOPool's ratio and sizes in that forward."""
    rows = dynopool_rows(model)
    handles = []
    for name, module in model.named_modules():
        if name in rows:

            def record(module, args, output, row=rows[name]):
                # int(): under the tracer, sizes are 0-d tensors.
                row['input'] = tuple(int(s) for s in args[0].shape[2:])
                row['output'] = tuple(int(s) for s in output.shape[2:])

            handles.append(module.register_forward_hook(record))
    inputs = torch.rand(1, in_channels, *shape)
    try:
        with torch.no_grad():
            analyzer = FlopAnalyzer(TensorMode(model), (inputs, ))
            for op in DYNOPOOL_OPS:
                analyzer.set_op_handle(op, dynopool_macs)
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            macs = analyzer.total()
    finally:
        for handle in handles:
            handle.remove()
    return dict(
        gmacs=macs / 1e9,
        params_m=parameter_count(model)[''] / 1e6,
        dynopools=rows)


def format_report(title: str, result: Dict[str, Any]) -> str:
    lines = [
        f'{title}: {result["gmacs"]:.3f} GMACs, '
        f'{result["params_m"]:.3f} M parameters'
    ]
    rows = result['dynopools']
    if not rows:
        return '\n'.join(lines + ['  (no DynOPool layers)'])
    width = max(len('layer'), *(len(name) for name in rows))
    lines.append(f'  {"layer":<{width}}  {"r_h":>7}  {"r_w":>7}  '
                 f'{"input":>11}  {"output":>11}')
    for name, row in rows.items():
        size_in = 'x'.join(map(str, row['input'])) if 'input' in row else '-'
        size_out = 'x'.join(map(str, row['output'])) \
            if 'output' in row else '-'
        lines.append(f'  {name:<{width}}  {row["r_h"]:>7.4f}  '
                     f'{row["r_w"]:>7.4f}  {size_in:>11}  {size_out:>11}')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    if '::' in args.config:  # e.g. mmseg::fcn/fcn_r50-d8_...py
        cfg = get_config(args.config)
    else:
        cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    model, removed = build_model(cfg)
    shape = tuple(args.shape)
    print(f'Input shape: {(args.in_channels, ) + shape}')
    if removed:
        print('Pretrained weights not loaded (counts do not depend on '
              f'them): {", ".join(removed)} set to None')
    results = {'init': count_complexity(model, shape, args.in_channels)}
    print(format_report('At initialisation', results['init']))
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint, map_location='cpu')
        results['checkpoint'] = count_complexity(model, shape,
                                                 args.in_channels)
        print(format_report(f'Learned ({args.checkpoint})',
                            results['checkpoint']))
        change = results['checkpoint']['gmacs'] / results['init']['gmacs']
        print(f'GMACs learned / initial: {change:.3f}')
    return results


if __name__ == '__main__':
    main()
