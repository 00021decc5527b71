"""PSNR / SSIM against known values and scikit-image."""
import math

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import METRICS
from skimage.metrics import structural_similarity

from mmdynopool.evaluation import PSNR, SSIM, psnr, rgb_to_y, ssim


def chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.transpose(2, 0, 1).copy())


def sample(pred, gt, scale=2, name=None):
    out = dict(pred_img=pred, gt_img=gt, scale=scale)
    if name is not None:
        out['dataset_name'] = name
    return out


def evaluate(metric, samples):
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def photo(h=40, w=44, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 4, w // 4, 3)).astype(np.float64)
    # smooth structure plus fine noise, 8-bit
    img = np.kron(base, np.ones((4, 4, 1))) + rng.normal(0, 8, (h, w, 3))
    return np.clip(img, 0, 255).round().astype(np.uint8)


def test_y_channel_range():
    white = np.full((1, 1, 3), 255.)
    black = np.zeros((1, 1, 3))
    assert rgb_to_y(white)[0, 0] == pytest.approx(235.0)
    assert rgb_to_y(black)[0, 0] == pytest.approx(16.0)


def test_identical_images():
    img = chw(photo())
    for convert_to in ('Y', None):
        result = evaluate(PSNR(convert_to=convert_to), [sample(img, img)])
        assert result['PSNR'] == math.inf
        result = evaluate(SSIM(convert_to=convert_to), [sample(img, img)])
        assert result['SSIM'] == pytest.approx(1.0)


def test_psnr_hand_computed():
    gt = np.full((10, 10, 3), 100, np.uint8)
    pred = np.full((10, 10, 3), 110, np.uint8)
    # RGB: every channel off by 10 -> MSE 100
    rgb = evaluate(PSNR(convert_to=None, crop_border=0),
                   [sample(chw(pred), chw(gt))])
    assert rgb['PSNR'] == pytest.approx(10 * math.log10(255**2 / 100))
    # Y: off by 10 * (65.481 + 128.553 + 24.966) / 255 = 10 * 219 / 255
    y = evaluate(PSNR(crop_border=0), [sample(chw(pred), chw(gt))])
    assert y['PSNR'] == pytest.approx(20 * math.log10(255 / (2190 / 255)))
    assert psnr(pred.astype(float),
                gt.astype(float)) == pytest.approx(28.1308, abs=1e-4)


def test_border_crop_defaults_to_scale():
    gt = photo(24, 24)
    pred = gt.copy()
    pred[:3] = 0  # damage only a 3-pixel border
    damaged = [sample(chw(pred), chw(gt), scale=3)]
    assert evaluate(PSNR(), damaged)['PSNR'] == math.inf
    assert evaluate(PSNR(crop_border=2), damaged)['PSNR'] < 20


def test_float_predictions_are_rounded_to_8_bit():
    gt = photo()
    pred = torch.from_numpy(gt.transpose(2, 0, 1) / 255.0).float()
    pred = pred + 0.4 / 255  # rounds back to gt
    assert evaluate(PSNR(), [sample(pred, chw(gt))])['PSNR'] == math.inf


@pytest.mark.parametrize('seed', [0, 1])
def test_ssim_matches_skimage(seed):
    gt = photo(seed=seed).astype(np.float64)
    noisy = np.clip(
        gt + np.random.default_rng(seed + 9).normal(0, 15, gt.shape), 0,
        255).round()

    def reference(a, b):
        return structural_similarity(a,
                                     b,
                                     gaussian_weights=True,
                                     sigma=1.5,
                                     use_sample_covariance=False,
                                     data_range=255)

    y_ref = reference(rgb_to_y(noisy), rgb_to_y(gt))
    assert ssim(rgb_to_y(noisy)[..., None],
                rgb_to_y(gt)[..., None]) == pytest.approx(y_ref, abs=1e-9)
    rgb_ref = np.mean([reference(noisy[..., c], gt[..., c]) for c in range(3)])
    assert ssim(noisy, gt) == pytest.approx(rgb_ref, abs=1e-9)
    # through the metric: Y and border crop of `scale`
    result = evaluate(SSIM(), [
        sample(chw(noisy.astype(np.uint8)), chw(gt.astype(np.uint8)), scale=2)
    ])
    cropped = reference(rgb_to_y(noisy)[2:-2, 2:-2], rgb_to_y(gt)[2:-2, 2:-2])
    assert result['SSIM'] == pytest.approx(cropped, abs=1e-9)
    assert 0 < result['SSIM'] < 1


def test_results_grouped_by_dataset_through_evaluator():
    gt = photo()
    off = np.clip(gt.astype(int) + 5, 0, 255).astype(np.uint8)
    evaluator = Evaluator(
        [METRICS.build(dict(type='PSNR')),
         METRICS.build(dict(type='SSIM'))])
    evaluator.process([
        sample(chw(gt), chw(gt), name='Set5'),
        sample(chw(off), chw(gt), name='Set14'),
    ])
    result = evaluator.evaluate(2)
    assert set(result) == {
        'Set5/PSNR', 'Set14/PSNR', 'Set5/SSIM', 'Set14/SSIM'
    }
    assert result['Set5/PSNR'] == math.inf
    assert 25 < result['Set14/PSNR'] < 45


def test_errors():
    with pytest.raises(ValueError, match="convert_to must be 'Y'"):
        PSNR(convert_to='YCbCr')
    with pytest.raises(ValueError, match='crop_border'):
        SSIM(crop_border=-1)
    with pytest.raises(KeyError, match='pred_img and gt_img'):
        PSNR().process({}, [dict(gt_img=chw(photo()))])
    with pytest.raises(ValueError, match='differ in shape'):
        PSNR().process({}, [sample(chw(photo(40, 40)), chw(photo()))])
