"""Transforms of paired LR/HR super-resolution samples.

Images are ``(H, W, 3)`` uint8 RGB arrays under ``results['gt']`` (HR) and
``results['lr']`` (LR); ``results['scale']`` is the upscaling factor.
"""
import random
from typing import Dict, Optional

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS
from mmengine.structures import BaseDataElement

from ..imresize import imresize_uint8

META_KEYS = ('key', 'scale', 'gt_path', 'lr_path', 'dataset_name', 'gt_shape',
             'lr_shape')


def read_rgb(path: str) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB image (gray repeated, alpha dropped)."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(f'cannot read image {path!r}: missing or not an image')
    if img.dtype != np.uint8:
        raise TypeError(f'{path!r} is {img.dtype}; only 8-bit images are '
                        'supported, convert it to 8-bit PNG')
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB))


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so both sides are multiples of ``scale``."""
    h, w = img.shape[:2]
    return img[:h - h % scale, :w - w % scale]


@TRANSFORMS.register_module()
class LoadSRPair(BaseTransform):
    """Load the HR image (mod-cropped to a multiple of ``scale``) and, when
    the sample has an LR file, the LR image; check that they pair up.

    Keeps ``results['gt']`` when the dataset already holds the array (e.g.
    :class:`SkimageSRDataset`). Without an LR file, add
    :class:`BicubicDownscale` to the pipeline.
    """

    def transform(self, results: Dict) -> Dict:
        scale = results['scale']
        gt = results.get('gt')
        if gt is None:
            gt = read_rgb(results['gt_path'])
        gt = mod_crop(gt, scale)
        if min(gt.shape[:2]) == 0:
            raise ValueError(f"HR image {results['gt_path']!r} is smaller "
                             f'than the scale {scale}')
        results['gt'] = gt
        if results.get('lr_path'):
            lr = read_rgb(results['lr_path'])
            expected = (gt.shape[0] // scale, gt.shape[1] // scale)
            if lr.shape[:2] != expected:
                raise ValueError(
                    f"LR image {results['lr_path']!r} is {lr.shape[:2]} but "
                    f"HR image {results['gt_path']!r} mod-cropped to "
                    f'{gt.shape[:2]} needs {expected} at x{scale}; the pair '
                    'does not match (wrong scale folder or file?)')
            results['lr'] = lr
        return results


@TRANSFORMS.register_module()
class BicubicDownscale(BaseTransform):
    """Make ``results['lr']`` from ``results['gt']`` when it is missing.

    Uses MATLAB's ``imresize`` bicubic algorithm (cubic ``a=-0.5`` with
    antialiasing kernel widening, symmetric borders; see
    :mod:`mmdynopool.datasets.imresize`), which made the published DIV2K /
    Set5 / Set14 LR images. Placed after :class:`PairedRandomCrop` it only
    resizes the crop (fast; the crop's outer 1-2 LR pixels see mirrored
    instead of true neighbours); placed before, it resizes the whole image.
    """

    def transform(self, results: Dict) -> Dict:
        if results.get('lr') is None:
            results['lr'] = imresize_uint8(results['gt'],
                                           1.0 / results['scale'])
        return results


@TRANSFORMS.register_module()
class PairedRandomCrop(BaseTransform):
    """Random aligned crops: ``lr_patch_size`` LR and ``scale`` times that
    HR. Without an LR image yet, only the HR image is cropped (make the LR
    crop afterwards with :class:`BicubicDownscale`).

    Args:
        lr_patch_size (int): Side of the LR crop (HR crop = scale x it).
    """

    def __init__(self, lr_patch_size: int) -> None:
        if isinstance(lr_patch_size, bool) or not isinstance(
                lr_patch_size, int) or lr_patch_size < 1:
            raise ValueError('lr_patch_size must be an integer >= 1, got '
                             f'{lr_patch_size!r}')
        self.lr_patch_size = lr_patch_size

    def transform(self, results: Dict) -> Dict:
        scale, size = results['scale'], self.lr_patch_size
        gt = results['gt']
        lr_h, lr_w = gt.shape[0] // scale, gt.shape[1] // scale
        if lr_h < size or lr_w < size:
            raise ValueError(
                f"image {results.get('gt_path')!r} is {gt.shape[:2]} "
                f'(LR {lr_h}x{lr_w}), smaller than the crop: LR '
                f'{size}x{size}, HR {size * scale}x{size * scale}; lower '
                'lr_patch_size or remove the image')
        top, left = random.randint(0, lr_h - size), random.randint(
            0, lr_w - size)
        if results.get('lr') is not None:
            results['lr'] = results['lr'][top:top + size, left:left + size]
        results['gt'] = gt[top * scale:(top + size) * scale,
                           left * scale:(left + size) * scale]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(lr_patch_size={self.lr_patch_size})'


def paired_keys(results: Dict):
    return [key for key in ('lr', 'gt') if results.get(key) is not None]


@TRANSFORMS.register_module()
class PairedRandomFlip(BaseTransform):
    """Flip LR and HR together, horizontally and/or vertically.

    Args:
        prob (float): Probability of each flip. Default: 0.5.
        directions (tuple[str]): From ``'horizontal'``, ``'vertical'``.
    """

    def __init__(self,
                 prob: float = 0.5,
                 directions=('horizontal', 'vertical')) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        unknown = set(directions) - {'horizontal', 'vertical'}
        if unknown:
            raise ValueError(f'unknown flip directions {sorted(unknown)}; '
                             "use 'horizontal' and/or 'vertical'")
        self.prob, self.directions = prob, tuple(directions)

    def transform(self, results: Dict) -> Dict:
        for direction in self.directions:
            if random.random() < self.prob:
                axis = 1 if direction == 'horizontal' else 0
                for key in paired_keys(results):
                    results[key] = np.flip(results[key], axis=axis)
        return results


@TRANSFORMS.register_module()
class PairedRandomRot90(BaseTransform):
    """Rotate LR and HR together by 90 degrees (transpose) with ``prob``;
    with flips this gives all 8 dihedral augmentations.

    Args:
        prob (float): Probability of the rotation. Default: 0.5.
    """

    def __init__(self, prob: float = 0.5) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob

    def transform(self, results: Dict) -> Dict:
        if random.random() < self.prob:
            for key in paired_keys(results):
                results[key] = np.rot90(results[key])
        return results


def to_chw_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@TRANSFORMS.register_module()
class PackSRInputs(BaseTransform):
    """Pack for the model: ``inputs`` is the LR ``(3, h, w)`` uint8 tensor;
    ``data_samples`` a :class:`BaseDataElement` with ``gt_img``
    ``(3, H, W)`` uint8 and the meta keys ``key``, ``scale``, ``gt_path``,
    ``lr_path``, ``dataset_name``, ``gt_shape``, ``lr_shape``."""

    def transform(self, results: Dict) -> Dict:
        lr: Optional[np.ndarray] = results.get('lr')
        if lr is None:
            raise KeyError('no LR image to pack: add BicubicDownscale to the '
                           'pipeline (the sample has no LR file)')
        sample = BaseDataElement()
        gt = results.get('gt')
        if gt is not None:
            sample.gt_img = to_chw_tensor(gt)
            results['gt_shape'] = tuple(gt.shape[:2])
        results['lr_shape'] = tuple(lr.shape[:2])
        sample.set_metainfo(
            {key: results[key]
             for key in META_KEYS if key in results})
        return dict(inputs=to_chw_tensor(lr), data_samples=sample)
