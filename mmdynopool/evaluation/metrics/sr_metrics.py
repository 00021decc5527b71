"""PSNR and SSIM for super-resolution, in the convention of the published
Set5 / Set14 tables.

Convention (README-ready): *PSNR and SSIM are computed on the Y channel of
YCbCr (ITU-R BT.601, Y in [16, 235]) of the 8-bit SR output and HR image,
after cropping ``scale`` pixels from each border; SSIM uses an 11x11
Gaussian window with sigma 1.5 (Wang et al., 2004), as in the EDSR / RCAN
tables. RGB PSNR (all three channels) is available with
``convert_to=None``.*
"""
from collections import OrderedDict, defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS


def to_uint8_hwc(img) -> np.ndarray:
    """A ``(3, H, W)`` tensor (float in [0, 1] or uint8) as a float64
    ``(H, W, 3)`` array of 8-bit values: SR outputs are rounded like saved
    PNGs."""
    if torch.is_tensor(img):
        img = img.detach().cpu()
        if img.is_floating_point():
            img = (img.clamp(0, 1) * 255).round()
        img = img.double().numpy()
    img = np.asarray(img, dtype=np.float64)
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError('expected a (C, H, W) image with C in (1, 3), got '
                         f'shape {img.shape}')
    return np.ascontiguousarray(img.transpose(1, 2, 0))


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma of an 8-bit-valued RGB image, in [16, 235] (float; the
    ``rgb2ycbcr`` of MATLAB on ``im2double`` input, times 255)."""
    return img @ np.array([65.481, 128.553, 24.966]) / 255.0 + 16.0


def prepare(pred, gt, crop_border: int, convert_to: Optional[str]):
    """Both images as float64 ``(H, W, C)``, cropped and converted."""
    pred, gt = to_uint8_hwc(pred), to_uint8_hwc(gt)
    if pred.shape != gt.shape:
        raise ValueError(f'prediction {pred.shape} and ground truth '
                         f'{gt.shape} differ in shape')
    if crop_border > 0:
        if min(gt.shape[:2]) <= 2 * crop_border:
            raise ValueError(f'image {gt.shape[:2]} too small for '
                             f'crop_border={crop_border}')
        pred = pred[crop_border:-crop_border, crop_border:-crop_border]
        gt = gt[crop_border:-crop_border, crop_border:-crop_border]
    if convert_to == 'Y' and gt.shape[2] == 3:
        pred, gt = rgb_to_y(pred)[..., None], rgb_to_y(gt)[..., None]
    return pred, gt


def psnr(pred: np.ndarray, gt: np.ndarray, data_range: float = 255.) -> float:
    """PSNR in dB of two arrays of 8-bit values (inf when identical)."""
    mse = np.mean((pred - gt)**2)
    if mse == 0:
        return float('inf')
    return float(10 * np.log10(data_range**2 / mse))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-coords**2 / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)[None, None]


def ssim(pred: np.ndarray, gt: np.ndarray, data_range: float = 255.) -> float:
    """SSIM (Wang et al., 2004) of ``(H, W, C)`` arrays, averaged over
    channels: 11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03, population
    statistics, 'valid' windows only (equals skimage's
    ``structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)``)."""
    c1, c2 = (0.01 * data_range)**2, (0.03 * data_range)**2
    window = gaussian_window()
    # channels as a batch of 1-channel images
    x = torch.from_numpy(pred.transpose(2, 0, 1).copy())[:, None]
    y = torch.from_numpy(gt.transpose(2, 0, 1).copy())[:, None]
    if min(x.shape[2:]) < window.shape[-1]:
        raise ValueError(f'SSIM needs images of at least 11x11 after the '
                         f'border crop, got {tuple(x.shape[2:])}')

    def filt(t):
        return F.conv2d(t, window)

    mu_x, mu_y = filt(x), filt(y)
    var_x = filt(x * x) - mu_x**2
    var_y = filt(y * y) - mu_y**2
    cov = filt(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) *
                (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) *
                                   (var_x + var_y + c2))
    return float(ssim_map.mean(dim=(1, 2, 3)).mean())


class SRMetricBase(BaseMetric):
    """Per-image metric of SR outputs, averaged per data set.

    Reads ``pred_img`` and ``gt_img`` (``(3, H, W)``, float in [0, 1] or
    uint8) and the meta keys ``scale`` and ``dataset_name`` of each sample.
    Results are named ``'<dataset_name>/<metric>'`` (e.g. ``'Set5/PSNR'``),
    or ``'<metric>'`` when samples carry no ``dataset_name``, so one
    evaluation over a ``ConcatDataset`` of Set5 and Set14 reports both.

    Args:
        crop_border (int, optional): Pixels cropped at each border; None
            (default) uses each sample's ``scale``.
        convert_to (str, optional): ``'Y'`` (default) or None for RGB.
        collect_device (str): As for ``BaseMetric``. Default: 'cpu'.
        prefix (str, optional): As for ``BaseMetric``.
    """

    metric: str = ''
    # '' (not None): keys carry no prefix, and mmengine does not warn
    default_prefix: Optional[str] = ''

    def __init__(self,
                 crop_border: Optional[int] = None,
                 convert_to: Optional[str] = 'Y',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if crop_border is not None and (not isinstance(crop_border, int)
                                        or crop_border < 0):
            raise ValueError('crop_border must be None or an integer >= 0, '
                             f'got {crop_border!r}')
        if convert_to not in ('Y', None):
            raise ValueError("convert_to must be 'Y' (BT.601 luma) or None "
                             f'(RGB), got {convert_to!r}')
        self.crop_border = crop_border
        self.convert_to = convert_to

    def compute_one(self, pred: np.ndarray, gt: np.ndarray) -> float:
        raise NotImplementedError

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'pred_img' not in sample or 'gt_img' not in sample:
                raise KeyError(f'{type(self).__name__} needs pred_img and '
                               'gt_img in each data sample; evaluate on a '
                               'data set with HR images')
            crop = self.crop_border
            if crop is None:
                crop = int(sample.get('scale', 0))
            pred, gt = prepare(sample['pred_img'], sample['gt_img'], crop,
                               self.convert_to)
            self.results.append(
                (sample.get('dataset_name'), self.compute_one(pred, gt)))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        grouped = defaultdict(list)
        for name, value in results:
            grouped[name].append(value)
        metrics = OrderedDict()
        for name, values in grouped.items():
            key = self.metric if name is None else f'{name}/{self.metric}'
            metrics[key] = float(np.mean(values))
        return metrics


@METRICS.register_module()
class PSNR(SRMetricBase):
    """Peak signal-to-noise ratio (dB), Y channel by default; see
    :class:`SRMetricBase` for the arguments. Averaged over images (an image
    identical to its ground truth counts as inf)."""

    metric = 'PSNR'

    def compute_one(self, pred: np.ndarray, gt: np.ndarray) -> float:
        return psnr(pred, gt)


@METRICS.register_module()
class SSIM(SRMetricBase):
    """Structural similarity, Y channel by default (RGB: mean over
    channels); see :class:`SRMetricBase` for the arguments."""

    metric = 'SSIM'

    def compute_one(self, pred: np.ndarray, gt: np.ndarray) -> float:
        return ssim(pred, gt)
