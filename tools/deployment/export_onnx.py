"""Export a trained DynOPool model to ONNX with dynamic height and width.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT \\
        --out model.onnx \\
        [--shape H W] [--check-shape H W] [--opset N] [--atol 1e-4]
        [--batch-size N] [--static] [--cfg-options k=v ...]

Steps: build the model from the config (pretrained-weight sources removed:
no network), load the checkpoint, freeze every DynOPool to its learned ratio
(:func:`mmdynopool.deploy.freeze_dynopool`), export with
``torch.onnx.export(dynamo=True)`` (symbolic H and W), then run the ONNX
model with onnxruntime at the training size (``--shape``, default the
config's crop size) and at a second size (``--check-shape``, default an odd
size of another aspect ratio) and compare with the PyTorch model (the
unfrozen one, as loaded). Beyond ``--atol`` (1e-4), both outputs are also
compared with a float64 run of the model: if the ONNX output is no farther
from it than PyTorch's own float32 output (plus ``atol``), the difference is
float32 rounding noise (deep transformers such as SegFormer reach ~1e-4) and
the check passes, saying so; otherwise the tool exits with status 1.
Finally it prints the GMACs of the frozen model at ``--shape``.

A data-dependent Python branch on a feature size (``if x.shape[-1] != w:``)
is evaluated once, at the traced size, and the ONNX graph keeps only that
branch; the check at the second size catches it (output shapes differ).

Inputs and outputs of the ONNX model: see :mod:`mmdynopool.deploy.export`
(segmentors: preprocessed image -> logits at the input size; SR models:
LR image in [0, 1] -> SR image). Needs ``pip install -e ".[deploy]"``.
"""
import argparse
import logging
import math
import os
import os.path as osp
import sys
import time
from typing import Optional, Sequence

from mmengine.config import Config, DictAction

import mmdynopool  # noqa: F401  (compat layers; registers the modules)
from mmdynopool.deploy import (build_model, check_onnx, default_shape,
                               export_onnx, second_shape, static_gmacs,
                               static_ratios)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a (DynOPool) model to ONNX with dynamic H and W')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        'checkpoint',
        help="checkpoint file ('none': random weights, for trying the tool)")
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        help='training input size H W (or one number): traced, checked and '
        'used for the GMACs (default: the config\'s crop size)')
    parser.add_argument(
        '--check-shape',
        type=int,
        nargs='+',
        help='second input size H W to check the dynamic model at (default: '
        'an odd size of another aspect ratio)')
    parser.add_argument(
        '--in-channels', type=int, default=3, help='input channels')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=1,
        help='batch of the example input; > 1 also makes the batch '
        'dimension dynamic (default 1: fixed batch of 1)')
    parser.add_argument(
        '--opset', type=int, help='ONNX opset (default: the exporter\'s)')
    parser.add_argument(
        '--atol',
        type=float,
        default=1e-4,
        help='largest allowed |onnxruntime - PyTorch| (default 1e-4)')
    parser.add_argument(
        '--static',
        action='store_true',
        help='fix H and W to --shape instead of exporting them dynamic')
    parser.add_argument(
        '--no-check', action='store_true', help='skip the onnxruntime check')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. model.decode_head.num_classes=4')
    args = parser.parse_args(argv)
    for name in ('shape', 'check_shape'):
        value = getattr(args, name)
        if value is None:
            continue
        if len(value) == 1:
            value = value * 2
        if len(value) != 2 or min(value) < 1:
            parser.error(f'--{name.replace("_", "-")} takes H W (or one '
                         f'size), got {value}')
        setattr(args, name, tuple(value))
    return args


def check_status(check: dict, atol: float) -> str:
    """``'OK'`` within ``atol``; ``'OK (float32 noise)'`` beyond it when the
    ONNX output is no farther from a float64 run than PyTorch's float32
    output is (plus ``atol``); else ``'FAILED'``."""
    if check['max_abs_diff'] <= atol:
        return f'OK (atol {atol:g})'
    if 'onnx_fp64_diff' in check and \
            check['onnx_fp64_diff'] <= check['torch_fp64_diff'] + atol:
        return 'OK (float32 noise: ONNX is as close to float64 as PyTorch)'
    return f'FAILED (atol {atol:g})'


def quiet_exporter() -> None:
    """The exporter logs every missing optional package (torchvision ops)."""
    for name in ('torch.onnx', 'torch._export', 'torch.export',
                 'torch.fx.experimental.symbolic_shapes', 'onnxscript',
                 'onnx_ir'):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    quiet_exporter()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    shape = args.shape or default_shape(cfg)
    check_shape = args.check_shape or second_shape(shape)
    checkpoint = None if args.checkpoint.lower() == 'none' else \
        args.checkpoint
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')

    model = build_model(cfg, checkpoint, freeze=False)
    ratios = static_ratios(model)
    print(f'Model: {type(model).__name__} from {args.config}'
          f'{"" if checkpoint else " (random weights: checkpoint none)"}')
    if ratios:
        print(f'Frozen DynOPool ratios ({len(ratios)} layers):')
        for name, (r_h, r_w) in ratios.items():
            print(f'  {name}: r_h={r_h:.4f} r_w={r_w:.4f}')
    else:
        print('The model has no DynOPool layer: exported as it is.')

    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    start = time.time()
    export_onnx(
        model,
        args.out,
        shape,
        in_channels=args.in_channels,
        batch_size=args.batch_size,
        opset_version=args.opset,
        dynamic=not args.static)
    kind = 'static' if args.static else 'dynamic'
    print(f'Exported {args.out} ({osp.getsize(args.out) / 2**20:.1f} MiB, '
          f'{kind} H x W, traced at {shape[0]}x{shape[1]}) in '
          f'{time.time() - start:.1f} s')

    result = dict(onnx=args.out, shape=tuple(shape), checks=[])
    failed = False
    if not args.no_check:
        shapes = [shape] if args.static else [shape, check_shape]
        checks = check_onnx(
            args.out,
            model,
            shapes,
            in_channels=args.in_channels,
            batch_size=args.batch_size)
        if any(math.isfinite(c['max_abs_diff'])
               and c['max_abs_diff'] > args.atol for c in checks):
            # Beyond atol: is it float32 noise? Compare both with float64.
            checks = check_onnx(
                args.out,
                model,
                shapes,
                in_channels=args.in_channels,
                batch_size=args.batch_size,
                fp64_reference=True)
        result['checks'] = checks
        for check in checks:
            status = check_status(check, args.atol)
            check['status'] = status
            failed |= status == 'FAILED'
            h, w = check['shape']
            print(f'onnxruntime vs PyTorch at {h}x{w}: output '
                  f'{"x".join(map(str, check["output_shape"]))}, max abs '
                  f'diff {check["max_abs_diff"]:.3g} (max |output| '
                  f'{check["max_abs_output"]:.3g}): {status}')
            if check['onnx_output_shape'] != check['output_shape']:
                print('  the ONNX output has shape '
                      f'{"x".join(map(str, check["onnx_output_shape"]))}: '
                      'a data-dependent branch on a feature size was '
                      'specialised to the traced size (see '
                      'mmdynopool/deploy/export.py)')
            if 'onnx_fp64_diff' in check:
                print(f'  vs a float64 run of the model: PyTorch float32 '
                      f'{check["torch_fp64_diff"]:.3g}, ONNX '
                      f'{check["onnx_fp64_diff"]:.3g}')

    gmacs = static_gmacs(model, shape, args.in_channels)
    result.update(gmacs)
    print(f'Static GMACs of the frozen model at {shape[0]}x{shape[1]}: '
          f'{gmacs["gmacs"]:.3f} (FlopAnalyzer, as get_flops.py; '
          f'convolutions / linear layers only: {gmacs["conv_gmacs"]:.3f})')
    if failed:
        print('ONNX check FAILED: onnxruntime and PyTorch disagree beyond '
              f'--atol {args.atol:g}', file=sys.stderr)
        sys.exit(1)
    return result


if __name__ == '__main__':
    main()
