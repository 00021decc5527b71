"""Multi-process training through ``tools/train.py --launcher pytorch``:
two processes started by ``torchrun --nproc_per_node 2``, gloo on CPU, DDP.

Both ranks must hold bit-identical DynOPool ``alpha`` after training (their
gradients are all-reduced although each rank reads other images), and the
rank-0 checkpoint must hold the same values. Each rank writes its own alpha
through :class:`tests.tools.seg_data.RankAlphaRatioHook`.

On a machine without a GPU ``tools/train.py`` adapts the GPU recipe itself
(``mmdynopool.utils.cli.adapt_distributed_to_cpu``): gloo instead of nccl,
BN instead of SyncBN, DDP without ``device_ids`` and a no-op
``torch.cuda.set_device``; the test passes no option for that.
"""
import json
import os.path as osp
import shutil
import socket
import subprocess
import sys

import pytest
import torch

from .seg_data import (ADE_CONFIG, REPO, TOOLS, check_ok,
                       checkpoint_alphas, make_ade20k, subprocess_env,
                       tiny_seg_options)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def torchrun() -> list:
    exe = osp.join(osp.dirname(sys.executable), 'torchrun')
    if osp.isfile(exe):
        return [exe]
    if shutil.which('torchrun'):
        return [shutil.which('torchrun')]
    return [sys.executable, '-m', 'torch.distributed.run']


@pytest.mark.skipif(not torch.distributed.is_available() or
                    not torch.distributed.is_gloo_available(),
                    reason='torch.distributed with gloo is not available')
def test_two_process_training_keeps_alpha_identical(tmp_path):
    root = make_ade20k(str(tmp_path / 'ADEChallengeData2016'), num_train=4,
                       num_val=2)
    work_dir = str(tmp_path / 'work_dir')
    options = tiny_seg_options(root, max_iters=4) + [
        'custom_hooks.0.type=tests.tools.seg_data.RankAlphaRatioHook',
    ]
    cmd = torchrun() + [
        '--nnodes', '1', '--nproc_per_node', '2', '--master_addr',
        '127.0.0.1', '--master_port', str(free_port()),
        osp.join(TOOLS, 'train.py'), ADE_CONFIG, '--launcher', 'pytorch',
        '--work-dir', work_dir, '--cfg-options', *options
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=subprocess_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=300)
    log = check_ok(proc)
    assert 'Iter(train) [4/4]' in log

    dumps = []
    for rank in (0, 1):
        with open(osp.join(work_dir, f'alpha_rank{rank}.json')) as f:
            dumps.append(json.load(f))
    for dump in dumps:
        assert dump['after_train']['world_size'] == 2
        assert dump['after_train']['iter'] == 4
    # same start (DDP broadcasts rank 0's parameters) ...
    assert dumps[0]['before_train']['alpha'] == \
        dumps[1]['before_train']['alpha']
    # ... and the same alpha after 4 steps on different images
    after0, after1 = (d['after_train']['alpha'] for d in dumps)
    assert after0 == after1
    assert checkpoint_alphas(osp.join(work_dir, 'iter_4.pth')) == after0
    init = dumps[0]['before_train']['alpha']
    assert max(
        abs(a - b) for k in init
        for a, b in zip(init[k], after0[k])) > 1e-5, 'alpha did not move'
    print('2 ranks, alpha init -> iter 4 (both ranks):')
    for name in init:
        print(f'  {name}: {init[name]} -> {after0[name]}')
    # the validation gathered both ranks' images into one mIoU
    assert 'mIoU' in log
