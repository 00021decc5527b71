"""A missing dataset folder stops ``tools/train.py`` / ``tools/test.py``
before anything is built, with an error that names the path and points to
mmseg's dataset preparation docs."""
import os.path as osp

import pytest

from mmdynopool.utils.cli import DATA_DOCS

from .seg_data import (ADE_CONFIG, CITYSCAPES_CONFIG, TOOLS, make_ade20k,
                       run_tool, tiny_seg_options)


def assert_clear_error(proc, missing, work_dir):
    out = proc.stdout
    assert proc.returncode != 0, out[-3000:]
    assert 'FileNotFoundError' in out, out[-3000:]
    assert missing in out, out[-3000:]
    assert DATA_DOCS in out and 'dataset_prepare' in DATA_DOCS
    # it failed before the runner made anything
    assert not osp.exists(work_dir)


@pytest.mark.parametrize('missing_split', ['train', 'val'])
def test_train_missing_data_root(tmp_path, missing_split):
    present = make_ade20k(str(tmp_path / 'ade'), num_train=1, num_val=1)
    missing = str(tmp_path / 'no' / 'such' / 'ADEChallengeData2016')
    work_dir = str(tmp_path / 'work_dir')
    options = tiny_seg_options(missing if missing_split == 'train' else
                               present)
    if missing_split == 'val':
        options.append(f'val_dataloader.dataset.data_root={missing}')
    proc = run_tool([
        osp.join(TOOLS, 'train.py'), ADE_CONFIG, '--work-dir', work_dir,
        '--cfg-options', *options
    ])
    assert_clear_error(proc, missing, work_dir)


def test_test_missing_data_root(tmp_path):
    missing = str(tmp_path / 'no_cityscapes')
    work_dir = str(tmp_path / 'work_dir')
    proc = run_tool([
        osp.join(TOOLS, 'test.py'), CITYSCAPES_CONFIG,
        str(tmp_path / 'never_read.pth'), '--work-dir', work_dir,
        '--cfg-options', *tiny_seg_options(missing)
    ])
    assert_clear_error(proc, missing, work_dir)
