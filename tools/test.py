"""Test (and evaluate) a checkpoint: the same arguments as mmseg's test.py.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR]
        [--show] [--show-dir DIR] [--tta] [--cfg-options k=v ...]
        [--launcher ...]
"""
import argparse

import mmdynopool  # noqa: F401  (compat layers and registries first)
from mmdynopool.deploy import add_freeze_hook
from mmdynopool.utils import (add_common_args, check_data_roots,
                              finish_distributed, load_config)
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint',
        help="checkpoint file, or 'none' for a model without weights "
        '(e.g. the bicubic SR baseline)')
    parser.add_argument(
        '--out', help='directory to save the raw predictions (segmentation: '
        'passed to the evaluator as output_dir)')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir', help='directory where painted / restored images are '
        'saved')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--tta', action='store_true', help='test time augmentation')
    parser.add_argument(
        '--freeze',
        action='store_true',
        help='freeze every DynOPool to its learned ratio after loading the '
        'checkpoint (same outputs, no alpha, no straight-through code)')
    add_common_args(parser)
    return parser.parse_args()


def trigger_visualization_hook(cfg: Config, args: argparse.Namespace) -> None:
    """Turn drawing on in ``default_hooks.visualization``.

    mmseg's ``SegVisualizationHook`` saves through the visualizer's
    ``save_dir``; the project's SR hook takes ``show_dir`` itself.
    """
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise RuntimeError('--show/--show-dir need a visualization hook in '
                           "default_hooks, e.g. visualization=dict(type="
                           "'SegVisualizationHook')")
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        if hook['type'] in ('SegVisualizationHook',
                            'mmseg.SegVisualizationHook'):
            cfg.visualizer['save_dir'] = args.show_dir
            # mmseg draws every 50th image by default: save them all.
            hook['interval'] = 1
        else:
            hook['show_dir'] = args.show_dir


def keep_segmentation_results(cfg: Config, out_dir: str) -> None:
    """``--out``: mmseg's IoUMetric writes its predictions to ``out_dir``."""
    evaluators = cfg.test_evaluator if isinstance(
        cfg.test_evaluator, (list, tuple)) else [cfg.test_evaluator]
    iou_metrics = [
        e for e in evaluators if e.get('type') in ('IoUMetric',
                                                   'mmseg.IoUMetric')
    ]
    if not iou_metrics:
        raise ValueError('--out saves segmentation predictions and needs an '
                         'IoUMetric test_evaluator; for restored images use '
                         '--show-dir')
    for metric in iou_metrics:
        metric['output_dir'] = out_dir
        metric['keep_results'] = True


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    cfg.load_from = None if args.checkpoint.lower() == 'none' \
        else args.checkpoint
    if args.show or args.show_dir:
        trigger_visualization_hook(cfg, args)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ValueError('--tta needs tta_model and tta_pipeline in the '
                             'config (mmseg base configs define them)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        keep_segmentation_results(cfg, args.out)
    if args.freeze:
        add_freeze_hook(cfg)
    check_data_roots(cfg, ('test_dataloader', ))
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.test()
    finish_distributed()


if __name__ == '__main__':
    main()
