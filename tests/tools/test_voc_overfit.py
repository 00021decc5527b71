"""A small DynOPool segmentation model overfits real photos.

Debian's ``labelme-examples`` ships three Pascal VOC photos with class masks
(background, bottle, bus, car, chair, person, sofa). They are copied into a
VOC layout, read by mmseg's ``PascalVOCDataset`` and scored by its
``IoUMetric`` at the photos' original resolution, after ~100 iterations of
``tools/train.py`` with a config based on the real ADE20K DynOPool recipe
(DynOPoolEncoderDecoder + GMACs budget, DynOPoolResNetV1c-18).

Predicting background everywhere scores mIoU ~7.5 (background IoU ~53 over
the 7 present classes) and aAcc ~53; the overfit model must do far better.
"""
import os.path as osp

import pytest

from .seg_data import (LABELME_VOC, TOOLS, check_ok, make_labelme_voc,
                       run_tool, scalar_records, voc_overfit_config)


@pytest.mark.skipif(
    not osp.isdir(osp.join(LABELME_VOC, 'JPEGImages')),
    reason=f'labelme-examples photos not found at {LABELME_VOC} (Debian: '
    'apt-get install labelme-examples; .ci/run installs it)')
def test_overfit_labelme_voc_photos(tmp_path):
    names = make_labelme_voc(str(tmp_path / 'voc'))
    assert len(names) == 3
    config = voc_overfit_config(
        str(tmp_path / 'voc_overfit.py'), str(tmp_path / 'voc'), iters=100,
        scale=(128, 96), lr=3e-3)
    work_dir = str(tmp_path / 'work_dir')
    log = check_ok(
        run_tool([osp.join(TOOLS, 'train.py'), config, '--work-dir',
                  work_dir], timeout=600))
    assert 'DynOPool iter 100' in log
    metrics = [r for r in scalar_records(work_dir) if 'mIoU' in r]
    assert len(metrics) == 1 and metrics[0]['step'] == 100
    print(f"labelme VOC overfit: mIoU {metrics[0]['mIoU']:.2f}, aAcc "
          f"{metrics[0]['aAcc']:.2f}")
    assert metrics[0]['aAcc'] > 80.0, metrics[0]
    assert metrics[0]['mIoU'] > 40.0, metrics[0]
