"""The ``DynOPoolBackbone`` recipes (HRNet-W18 FCN, SegNeXt MSCAN-T) train
and validate through ``tools/train.py`` on tiny ADE20K / Cityscapes sets in
mmseg's layouts, the recipes' own full-size backbones at a 64x64 crop."""
import json
import math
import os.path as osp

import pytest

from .seg_data import (CONFIGS, TOOLS, check_ok, make_ade20k, make_cityscapes,
                       run_tool, scalar_records)

RECIPES = {
    'fcn_dynopool-hr18_4xb4-80k_ade20k-512x512.py': ('ade', 5),
    'fcn_dynopool-hr18_4xb2-80k_cityscapes-512x1024.py': ('cityscapes', 5),
    'segnext_dynopool-mscan-t_1xb16-adamw-160k_ade20k-512x512.py':
    ('ade', 5),
    'segnext_dynopool-mscan-t_1xb16-adamw-160k_cityscapes-512x1024.py':
    ('cityscapes', 5),
}


def tiny_options(data_root, hrnet):
    """2 iterations, validation at the end, a 64x64 crop of ~96x64 images,
    no pretrained weights, plain BN."""
    options = [
        'model.pretrained=None',
        'model.backbone.backbone.init_cfg=None',
        'model.backbone.backbone.norm_cfg.type=BN',
        'model.data_preprocessor.size=(64,64)',
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1', 'custom_hooks.0.interval=1',
        'train_dataloader.batch_size=2',
        'train_dataloader.dataset.pipeline.2.scale=(96,64)',
        'train_dataloader.dataset.pipeline.3.crop_size=(64,64)',
        'val_dataloader.dataset.pipeline.1.scale=(96,64)',
        'env_cfg.cudnn_benchmark=False', 'randomness.seed=0'
    ]
    if hrnet:
        options.append('model.decode_head.norm_cfg.type=BN')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [
            f'{loader}.num_workers=0', f'{loader}.persistent_workers=False',
            f'{loader}.dataset.data_root={data_root}'
        ]
    return options


@pytest.mark.parametrize('recipe', list(RECIPES))
def test_recipe_trains_and_validates_on_tiny_data(recipe, tmp_path):
    data, num_dynopools = RECIPES[recipe]
    root = str(tmp_path / 'data')
    (make_ade20k if data == 'ade' else make_cityscapes)(root)
    work_dir = str(tmp_path / 'work_dir')
    log = check_ok(run_tool(
        [osp.join(TOOLS, 'train.py'), osp.join(CONFIGS, recipe),
         '--work-dir', work_dir, '--cfg-options',
         *tiny_options(root, 'hr18' in recipe)], timeout=600))
    assert f'got {num_dynopools} DynOPools' in log
    assert 'DynOPoolHealthHook' in log and 'DynOPoolRatioHook' in log
    records = scalar_records(work_dir)
    losses = [r['loss'] for r in records if 'loss' in r]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    assert any('loss_gmacs' in r for r in records)
    miou = [r['mIoU'] for r in records if 'mIoU' in r]
    assert len(miou) == 1 and 0.0 <= miou[0] <= 100.0
    with open(osp.join(work_dir, 'dynopool_ratios.json')) as f:
        ratios = json.load(f)
    assert len(ratios[-1]['layers']) == num_dynopools
    assert ratios[-1]['gmacs'] > 0
