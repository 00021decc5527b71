"""What ``tools/train.py`` and ``tools/test.py`` share (mmseg's arguments)."""
import argparse
import logging
import os
import os.path as osp
from typing import Iterator, Tuple

import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log

DATA_DOCS = ('https://mmsegmentation.readthedocs.io/en/latest/user_guides/'
             '2_dataset_prepare.html')


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local-rank``."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs (e.g. '
        'train_cfg.max_iters=100 "model.backbone.depth=18")')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch>=2) or --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """The config with CLI overrides, launcher and work dir applied.

    The work dir follows mmseg's priority: CLI > config > config file name.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    adapt_distributed_to_cpu(cfg)
    return cfg


def enable_amp(cfg: Config) -> None:
    """Switch the optimiser wrapper to ``AmpOptimWrapper`` (``--amp``)."""
    if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
        print_log('AMP training is already enabled in your config.',
                  logger='current', level=logging.WARNING)
        return
    if cfg.optim_wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
        raise ValueError('--amp needs optim_wrapper.type == "OptimWrapper", '
                         f'got {cfg.optim_wrapper.type!r}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def dataset_roots(cfg: Config, loaders: Tuple[str, ...]) -> Iterator[str]:
    """``data_root`` of every dataset of the given dataloaders (wrappers like
    ConcatDataset/RepeatDataset included)."""

    def roots(dataset_cfg):
        if isinstance(dataset_cfg, (list, tuple)):
            for item in dataset_cfg:
                yield from roots(item)
            return
        if not isinstance(dataset_cfg, (dict, ConfigDict)):
            return
        if dataset_cfg.get('data_root'):
            yield dataset_cfg['data_root']
        for key in ('dataset', 'datasets'):
            if key in dataset_cfg:
                yield from roots(dataset_cfg[key])

    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if loader_cfg:
            yield from roots(loader_cfg.get('dataset'))


def check_data_roots(cfg: Config, loaders: Tuple[str, ...]) -> None:
    """Fail early, naming the path, when a dataset folder is missing."""
    for root in dataset_roots(cfg, loaders):
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'data_root {root!r} does not exist (from {loaders}). '
                'Prepare the dataset in the standard mmseg layout (see '
                f'{DATA_DOCS}) or point the config at it, e.g. --cfg-options '
                f'train_dataloader.dataset.data_root=/path/to/data')


def replace_sync_bn(node) -> None:
    """Turn every ``norm_cfg`` of type SyncBN in a config tree into BN."""
    if isinstance(node, (dict, ConfigDict)):
        if node.get('type') in ('SyncBN', 'MMSyncBN'):
            node['type'] = 'BN'
        for value in node.values():
            replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            replace_sync_bn(value)


def adapt_distributed_to_cpu(cfg: Config) -> None:
    """Let ``--launcher pytorch`` run on machines without a GPU.

    mmseg's recipes assume CUDA: nccl, SyncBN, DDP with ``device_ids``, and
    mmengine's ``init_dist`` calls ``torch.cuda.set_device``. Without CUDA we
    switch to gloo, plain BN (DDP refuses SyncBN on CPU modules), DDP without
    ``device_ids``, and make ``torch.cuda.set_device`` a no-op for this
    process (the one CUDA call mmengine makes unconditionally).
    """
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', ConfigDict())
    cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(
        type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    replace_sync_bn(cfg.model)
    torch.cuda.set_device = lambda device: None
    print_log('no GPU: distributed run on CPU with gloo, BN instead of SyncBN',
              logger='current', level=logging.WARNING)


def finish_distributed() -> None:
    """End a distributed run cleanly: every rank waits for the others, then
    the process group is torn down. Otherwise the rank that finishes first
    exits while the others still talk to it, and gloo's threads can abort
    the process at exit ("terminate called without an active exception",
    seen once in CI in a two-process CPU run). No-op outside ``--launcher``
    runs."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
