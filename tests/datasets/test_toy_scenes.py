"""The toy scenes of the CPU demo: deterministic, well-formed, and the three
variants differ as designed."""
import numpy as np
import pytest
import torch
from mmengine.registry import DATASETS, init_default_scope

from mmdynopool.datasets.toy_scenes import (TOY_CLASSES, TOY_VARIANTS,
                                            LoadToyScene, ToySceneDataset,
                                            make_toy_scene, scene_seed)

SIZE = (64, 64)
NUM = 24  # scenes per statistic


def scenes(variant, num=NUM, split='val'):
    return [
        make_toy_scene(variant, scene_seed(0, split, i), SIZE)
        for i in range(num)
    ]


def gradient_energy(imgs):
    """Mean |vertical| and |horizontal| finite difference of the images."""
    gray = np.stack([img[..., 0].astype(np.float64) for img in imgs])
    dy = np.abs(np.diff(gray, axis=1)).mean()
    dx = np.abs(np.diff(gray, axis=2)).mean()
    return dy, dx


def label_changes(labels):
    """Mean number of label changes down a column and along a row."""
    lab = np.stack(labels).astype(np.int64)
    down = (np.diff(lab, axis=1) != 0).sum(axis=1).mean()
    along = (np.diff(lab, axis=2) != 0).sum(axis=2).mean()
    return down, along


@pytest.mark.parametrize('variant', TOY_VARIANTS)
def test_shapes_dtypes_and_label_range(variant):
    for img, label in scenes(variant, 6):
        assert img.shape == SIZE + (3, ) and img.dtype == np.uint8
        assert label.shape == SIZE and label.dtype == np.uint8
        assert label.max() < len(TOY_CLASSES)
        assert len(np.unique(label)) >= 2  # every scene has a boundary
        # gray content in three identical channels
        assert np.array_equal(img[..., 0], img[..., 1])
        assert np.array_equal(img[..., 0], img[..., 2])


def test_non_square_size():
    img, label = make_toy_scene('stretched', 3, (48, 64))
    assert img.shape == (48, 64, 3) and label.shape == (48, 64)


@pytest.mark.parametrize('variant', TOY_VARIANTS)
def test_deterministic_by_seed(variant):
    a = make_toy_scene(variant, [0, 1, 7], SIZE)
    b = make_toy_scene(variant, [0, 1, 7], SIZE)
    c = make_toy_scene(variant, [0, 1, 8], SIZE)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_no_single_pixel_shortcut():
    """Every class has about the same mean intensity: a pixel's value alone
    does not give its label, the network needs a receptive field."""
    imgs, labels = zip(*scenes('plain', 16))
    img = np.stack([i[..., 0] for i in imgs]).astype(np.float64)
    lab = np.stack(labels)
    means = [img[lab == c].mean() for c in range(len(TOY_CLASSES))]
    assert max(means) - min(means) < 0.5 * img.std()


def test_stretched_has_lower_vertical_frequency():
    dy_s, dx_s = gradient_energy([i for i, _ in scenes('stretched')])
    dy_p, dx_p = gradient_energy([i for i, _ in scenes('plain')])
    # stretched: clearly smoother down the columns than along the rows,
    # relative to the unstretched scenes
    assert dy_s / dx_s < 0.75 * (dy_p / dx_p)
    down, along = label_changes([label for _, label in scenes('stretched')])
    assert down < along  # regions are taller than wide


def test_stretch_factor():
    """``stretch`` sets how many rows one base-scene row becomes: at x4
    the scenes are smoother down the columns than at x2, and every block
    of four rows of labels repeats one row far more often than at x2."""
    def stretched(factor):
        return [make_toy_scene('stretched', scene_seed(0, 'val', i), SIZE,
                               stretch=factor) for i in range(NUM)]

    x2, x4 = stretched(2), stretched(4)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(
        stretched(4), [make_toy_scene('stretched', scene_seed(0, 'val', i),
                                      SIZE) for i in range(NUM)]))  # default
    dy2, dx2 = gradient_energy([img for img, _ in x2])
    dy4, dx4 = gradient_energy([img for img, _ in x4])
    assert dy4 / dx4 < 0.75 * (dy2 / dx2)
    down2, _ = label_changes([label for _, label in x2])
    down4, _ = label_changes([label for _, label in x4])
    assert down4 < down2


def test_tiled_is_denser_than_enlarged():
    tiled = scenes('tiled')
    enlarged = scenes('enlarged')
    assert sum(gradient_energy([i for i, _ in tiled])) > 1.5 * sum(
        gradient_energy([i for i, _ in enlarged]))
    assert sum(label_changes([label for _, label in tiled])) > 3 * sum(
        label_changes([label for _, label in enlarged]))


def test_bad_arguments():
    with pytest.raises(ValueError, match='variant'):
        make_toy_scene('rotated', 0)
    with pytest.raises(ValueError, match='multiples of 4'):
        make_toy_scene('plain', 0, (30, 64))
    with pytest.raises(ValueError, match='num_samples'):
        ToySceneDataset(variant='tiled', num_samples=0)
    with pytest.raises(ValueError, match='split'):
        ToySceneDataset(variant='tiled', num_samples=2, split='dev')
    with pytest.raises(ValueError, match='stretch must be an int >= 2 that '
                       'divides the scene height 64'):
        ToySceneDataset(variant='stretched', num_samples=2, stretch=3)
    with pytest.raises(ValueError, match='stretch'):
        make_toy_scene('stretched', 0, (64, 64), stretch=1)


def test_dataset_and_pipeline():
    init_default_scope('mmseg')
    cfg = dict(
        type='ToySceneDataset',
        variant='tiled',
        num_samples=5,
        split='train',
        pipeline=[dict(type='LoadToyScene'),
                  dict(type='PackSegInputs')])
    dataset = DATASETS.build(cfg)
    assert len(dataset) == 5
    assert dataset.metainfo['classes'] == TOY_CLASSES
    sample = dataset[2]
    assert sample['inputs'].shape == (3, 64, 64)
    assert sample['inputs'].dtype == torch.uint8
    gt = sample['data_samples'].gt_sem_seg.data
    assert gt.shape == (1, 64, 64) and int(gt.max()) < len(TOY_CLASSES)
    assert sample['data_samples'].ori_shape == (64, 64)
    # the same sample twice, and train/val are different scenes
    assert torch.equal(dataset[2]['inputs'], sample['inputs'])
    val = DATASETS.build(dict(cfg, split='val'))
    assert not torch.equal(val[2]['inputs'], sample['inputs'])
    # the pipeline's scene is the generator's scene
    img, label = make_toy_scene('tiled', scene_seed(0, 'train', 2))
    assert np.array_equal(sample['inputs'].permute(1, 2, 0).numpy(), img)
    assert np.array_equal(gt[0].numpy(), label)


def test_load_transform_standalone():
    results = LoadToyScene()(
        dict(scene_variant='enlarged', scene_seed=[1, 0, 0],
             scene_size=(32, 48)))
    assert results['img'].shape == (32, 48, 3)
    assert results['gt_seg_map'].shape == (32, 48)
    assert results['img_shape'] == (32, 48)
    assert results['seg_fields'] == ['gt_seg_map']


def test_dataset_passes_stretch_to_the_pipeline():
    init_default_scope('mmseg')
    dataset = DATASETS.build(
        dict(type='ToySceneDataset', variant='stretched', num_samples=2,
             split='val', stretch=2, pipeline=[dict(type='LoadToyScene')]))
    img, label = make_toy_scene('stretched', scene_seed(0, 'val', 1), SIZE,
                                stretch=2)
    sample = dataset[1]
    assert np.array_equal(sample['img'], img)
    assert np.array_equal(sample['gt_seg_map'], label)
