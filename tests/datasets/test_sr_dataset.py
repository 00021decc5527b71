"""SR datasets and transforms on tiny PNG folders made in tmp_path."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DATASETS, TRANSFORMS

from mmdynopool.datasets import (SKIMAGE_PHOTOS, SkimageSRDataset,
                                 SRPairedDataset, imresize, imresize_uint8)
from mmdynopool.datasets.transforms import (LoadSRPair, PackSRInputs,
                                            PairedRandomCrop)

TEST_PIPELINE = [
    dict(type='LoadSRPair'),
    dict(type='BicubicDownscale'),
    dict(type='PackSRInputs')
]


def write_png(path, img: np.ndarray) -> None:
    assert cv2.imwrite(str(path), img[..., ::-1])  # RGB -> BGR on disk


def random_img(h, w, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0,
                                                256, (h, w, 3),
                                                dtype=np.uint8)


@pytest.fixture
def hr_folder(tmp_path):
    folder = tmp_path / 'Set5' / 'GTmod12'
    folder.mkdir(parents=True)
    # odd sizes: mod-cropping to the scale must happen
    write_png(folder / 'a.png', random_img(27, 31, 1))
    write_png(folder / 'b.png', random_img(25, 30, 2))
    return tmp_path


def test_hr_only_layout_makes_lr_on_the_fly(hr_folder):
    ds = DATASETS.build(
        dict(type='SRPairedDataset',
             scale=2,
             data_root=str(hr_folder / 'Set5'),
             data_prefix=dict(gt='GTmod12', lr='LRbicx{scale}'),
             test_mode=True,
             pipeline=TEST_PIPELINE))
    assert len(ds) == 2
    info = ds.get_data_info(0)
    assert info['lr_path'] is None and info['key'] == 'a'
    assert info['dataset_name'] == 'Set5'
    out = ds[0]
    hr = cv2.imread(info['gt_path'])[..., ::-1][:26, :30]  # mod-crop x2
    assert out['inputs'].shape == (3, 13, 15)
    assert out['inputs'].dtype == torch.uint8
    assert out['data_samples'].gt_img.shape == (3, 26, 30)
    expected_lr = imresize_uint8(np.ascontiguousarray(hr), 0.5)
    assert torch.equal(out['inputs'],
                       torch.from_numpy(expected_lr.transpose(2, 0, 1)))
    meta = out['data_samples'].metainfo
    assert meta['scale'] == 2 and meta['key'] == 'a'
    assert meta['lr_shape'] == (13, 15) and meta['gt_shape'] == (26, 30)


def test_div2k_lr_hr_folder_pairs(tmp_path):
    root = tmp_path / 'DIV2K'
    (root / 'DIV2K_train_HR').mkdir(parents=True)
    (root / 'DIV2K_train_LR_bicubic' / 'X3').mkdir(parents=True)
    for i in (1, 2):
        write_png(root / 'DIV2K_train_HR' / f'000{i}.png',
                  random_img(30, 36, i))
        # a constant LR image proves the file is read, not made
        write_png(root / 'DIV2K_train_LR_bicubic' / 'X3' / f'000{i}x3.png',
                  np.full((10, 12, 3), 7 * i, np.uint8))
    ds = SRPairedDataset(scale=3,
                         data_root=str(root),
                         data_prefix=dict(
                             gt='DIV2K_train_HR',
                             lr='DIV2K_train_LR_bicubic/X{scale}'),
                         pipeline=TEST_PIPELINE)
    assert [ds.get_data_info(i)['key'] for i in range(2)] == ['0001', '0002']
    assert ds.get_data_info(1)['lr_path'].endswith('X3/0002x3.png')
    out = ds[1]
    assert out['inputs'].shape == (3, 10, 12)
    assert bool((out['inputs'] == 14).all())
    assert ds.dataset_name == 'DIV2K'


def test_lr_folder_missing_falls_back_or_raises(hr_folder):
    common = dict(scale=2,
                  data_root=str(hr_folder / 'Set5'),
                  data_prefix=dict(gt='GTmod12', lr='LRbicx2'))
    assert SRPairedDataset(**common).get_data_info(0)['lr_path'] is None
    with pytest.raises(FileNotFoundError, match='LRbicx2.*does not exist'):
        SRPairedDataset(**common, lr_optional=False)


@pytest.mark.parametrize('make, error, pattern', [
    ('missing', FileNotFoundError, r'nope.*does not exist.*data_root'),
    ('empty', FileNotFoundError, r'contains no image'),
])
def test_folder_errors_name_the_path(tmp_path, make, error, pattern):
    if make == 'empty':
        (tmp_path / 'nope').mkdir()
    with pytest.raises(error, match=pattern):
        SRPairedDataset(scale=2,
                        data_root=str(tmp_path),
                        data_prefix=dict(gt='nope'))


def test_data_prefix_needs_gt():
    with pytest.raises(ValueError, match='data_prefix must name the HR'):
        SRPairedDataset(scale=2, data_prefix=dict(lr='x'))


def test_bad_scale():
    with pytest.raises(ValueError, match='scale must be one of'):
        SRPairedDataset(scale=5, data_prefix=dict(gt='x'))


def test_unmatched_pairs(tmp_path):
    (tmp_path / 'HR').mkdir()
    (tmp_path / 'LR').mkdir()
    write_png(tmp_path / 'HR' / 'a.png', random_img(8, 8))
    write_png(tmp_path / 'LR' / 'b.png', random_img(4, 4))
    prefix = dict(gt='HR', lr='LR')
    with pytest.raises(FileNotFoundError,
                       match="no LR image for HR image 'a'"):
        SRPairedDataset(scale=2, data_root=str(tmp_path), data_prefix=prefix)
    write_png(tmp_path / 'LR' / 'a.png', random_img(4, 4))
    with pytest.raises(ValueError, match=r"without an HR image.*\['b'\]"):
        SRPairedDataset(scale=2, data_root=str(tmp_path), data_prefix=prefix)


def test_lr_of_wrong_size_is_rejected(tmp_path):
    (tmp_path / 'HR').mkdir()
    (tmp_path / 'LR').mkdir()
    write_png(tmp_path / 'HR' / 'a.png', random_img(16, 16))
    write_png(tmp_path / 'LR' / 'a.png', random_img(4, 4))  # x4, not x2
    ds = SRPairedDataset(scale=2,
                         data_root=str(tmp_path),
                         data_prefix=dict(gt='HR', lr='LR'),
                         test_mode=True,
                         pipeline=TEST_PIPELINE)
    with pytest.raises(ValueError, match=r'needs \(8, 8\) at x2.*not match'):
        ds[0]


def test_image_smaller_than_crop(hr_folder):
    ds = SRPairedDataset(scale=2,
                         data_root=str(hr_folder / 'Set5'),
                         data_prefix=dict(gt='GTmod12'),
                         pipeline=[
                             dict(type='LoadSRPair'),
                             dict(type='PairedRandomCrop', lr_patch_size=16)
                         ])
    with pytest.raises(ValueError,
                       match='smaller than the crop.*lower '
                       'lr_patch_size'):
        ds[0]


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_paired_crop_flip_rot_stay_aligned(scale):
    # HR made of constant scale x scale blocks, one per LR pixel: LR and HR
    # stay aligned iff LR == HR[::scale, ::scale] after every transform.
    lr = random_img(20, 17, scale)
    gt = np.kron(lr, np.ones((scale, scale, 1), np.uint8))
    results = dict(scale=scale, gt=gt, lr=lr, gt_path='x')
    pipeline = [
        PairedRandomCrop(lr_patch_size=8),
        TRANSFORMS.build(dict(type='PairedRandomFlip', prob=1.0)),
        TRANSFORMS.build(dict(type='PairedRandomRot90', prob=1.0)),
    ]
    for transform in pipeline:
        results = transform(results)
        assert np.array_equal(results['lr'], results['gt'][::scale, ::scale])
    assert results['lr'].shape == (8, 8, 3)
    assert results['gt'].shape == (8 * scale, 8 * scale, 3)
    assert not np.array_equal(results['lr'], lr[:8, :8])  # it did move


def test_crop_without_lr_then_downscale():
    results = dict(scale=4, gt=random_img(64, 80), lr=None, gt_path='x')
    results = PairedRandomCrop(lr_patch_size=6)(results)
    assert results['gt'].shape == (24, 24, 3) and results['lr'] is None
    results = TRANSFORMS.build(dict(type='BicubicDownscale'))(results)
    assert results['lr'].shape == (6, 6, 3)


def test_pack_needs_lr():
    with pytest.raises(KeyError, match='BicubicDownscale'):
        PackSRInputs()(dict(gt=random_img(4, 4), scale=2))


def test_bad_transform_args():
    with pytest.raises(ValueError, match='lr_patch_size'):
        PairedRandomCrop(lr_patch_size=0)
    with pytest.raises(ValueError, match='unknown flip directions'):
        TRANSFORMS.build(dict(type='PairedRandomFlip', directions=['diag']))


def test_skimage_dataset_is_offline_and_rgb():
    ds = SkimageSRDataset(names=['coins', 'page'],
                          scale=4,
                          test_mode=True,
                          pipeline=TEST_PIPELINE)
    out = ds[0]  # coins: 303x384 gray -> 3 channels, mod-cropped to 300
    assert out['data_samples'].gt_img.shape == (3, 300, 384)
    assert out['inputs'].shape == (3, 75, 96)
    assert out['data_samples'].metainfo['dataset_name'] == 'skimage'
    assert set(ds.names) <= set(SKIMAGE_PHOTOS)


def test_skimage_dataset_errors():
    with pytest.raises(ValueError, match="unknown skimage photo 'lena'"):
        SkimageSRDataset(names=['lena'], scale=2)
    with pytest.raises(ValueError, match='non-empty list'):
        SkimageSRDataset(names='coins', scale=2)
    with pytest.raises(ValueError, match='more than once'):
        SkimageSRDataset(names=['coins', 'coins'], scale=2)


def test_imresize_matches_pil_bicubic():
    from PIL import Image
    img = random_img(48, 40, 3)
    img = cv2.GaussianBlur(img, (5, 5), 1.0)  # photo-like smoothness
    for scale in (2, 4):
        ours = imresize_uint8(img, 1 / scale).astype(int)
        # PIL's BICUBIC is also Keys a=-0.5 with an antialiasing kernel
        pil = np.asarray(
            Image.fromarray(img).resize((40 // scale, 48 // scale),
                                        Image.BICUBIC)).astype(int)
        inner = (slice(2, -2), slice(2, -2))  # borders are padded differently
        assert np.abs(ours[inner] - pil[inner]).max() <= 1


def test_imresize_exact_on_linear_ramps():
    # Keys' cubic kernel reproduces linear functions: away from the
    # borders, downscaling x2 samples the ramp at input position 2i + 0.5.
    ramp = torch.arange(32, dtype=torch.float64).repeat(8, 1)
    out = imresize(ramp, scale=0.5)
    assert out.shape == (4, 16)
    expected = 2 * torch.arange(16, dtype=torch.float64) + 0.5
    assert torch.allclose(out[:, 3:-3], expected[3:-3].expand(4, -1))
    up = imresize(torch.full((1, 3, 5, 7), 0.25), scale=3.0)
    assert up.shape == (1, 3, 15, 21)
    assert torch.allclose(up, torch.tensor(0.25))


def test_imresize_errors():
    with pytest.raises(TypeError, match='imresize_uint8'):
        imresize(torch.zeros(4, 4, dtype=torch.uint8), scale=0.5)
    with pytest.raises(ValueError, match='exactly one'):
        imresize(torch.zeros(4, 4), scale=0.5, size=(2, 2))
    with pytest.raises(TypeError, match='uint8'):
        imresize_uint8(np.zeros((4, 4), np.float32), 0.5)


def test_gray_and_rgba_files_become_rgb(tmp_path):
    cv2.imwrite(str(tmp_path / 'g.png'), np.full((8, 6), 9, np.uint8))
    rgba = np.zeros((8, 6, 4), np.uint8)
    rgba[..., 2] = 200  # red in BGRA
    cv2.imwrite(str(tmp_path / 'h.png'), rgba)
    for name, value in (('g.png', (9, 9, 9)), ('h.png', (200, 0, 0))):
        out = LoadSRPair()(dict(gt_path=osp.join(tmp_path, name), scale=2))
        assert out['gt'].shape == (8, 6, 3)
        assert tuple(out['gt'][0, 0]) == value
