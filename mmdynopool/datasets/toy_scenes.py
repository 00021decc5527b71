"""Toy texture scenes for the DynOPool demo: no download, made on first use.

Every scene is a segmentation problem: a few regions (a Voronoi partition),
each filled with one of four textures; the label of a pixel is its texture.
The textures are real photos shipped with scikit-image (``brick``,
``grass``, ``gravel``) plus a procedural band-pass noise (``sand``), each
normalised to the same mean and contrast, so a single pixel says nothing
about its class: the network needs a receptive field.

The paper's toy sets (Jang et al., CVPR 2022, Sec. 4) are one geometric
transform of the same kind of *base scene* (textures at their native scale),
so every variant has the same input size and the same network costs the
same GMACs on all of them:

``plain``
    the base scene at the output size (reference, no transform).
``stretched``
    a base scene of a quarter of the height, stretched vertically x4
    (``stretch``): less information per row than per column (textures and
    regions are four times as tall as wide). At x2 the row redundancy is too
    small to matter for this demo's network: a fixed anisotropic network
    (``r = (0.354, 0.707)`` at every stage) did no better than the isotropic
    stride-2 one at the same GMACs; at x4 one with ``r = (0.25, 1.0)`` at
    its first stage gains 1.3 mIoU (3 seeds).
``tiled``
    a base scene of the full size shrunk x0.5 and tiled 2 x 2: dense local
    information (fine textures, many small regions).
``enlarged``
    a base scene of half the size enlarged x2: sparse information (coarse,
    smooth textures, few big regions).

A scene is a pure function of ``(variant, seed, size)``;
:class:`ToySceneDataset` gives every sample its own seed derived from
``(data seed, split, index)`` and :class:`LoadToyScene` makes it in the data
pipeline, so nothing is stored. ``python -m mmdynopool.datasets.toy_scenes
--out data/demo`` writes PNGs of a few scenes for a look.
"""
import argparse
import os
import os.path as osp
from functools import lru_cache
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.registry import DATASETS, TRANSFORMS
from mmseg.datasets import BaseSegDataset

TOY_CLASSES = ('brick', 'grass', 'gravel', 'sand')
TOY_PALETTE = [[180, 60, 40], [60, 160, 60], [140, 140, 140], [220, 200, 120]]
TOY_VARIANTS = ('plain', 'stretched', 'tiled', 'enlarged')
SPLITS = ('train', 'val', 'test')

# Textures are photos shrunk by this factor (512 px -> 256 px): bricks,
# blades and stones span several pixels of a 64 x 64 base scene, and still a
# few after the x0.5 shrink of the tiled variant.
TEXTURE_SIZE = 256
# Mean area of one Voronoi region of a base scene, in base-scene pixels.
REGION_AREA = 24 * 24
# Vertical stretch of the ``stretched`` variant.
STRETCH = 4
GRAY_MEAN = 128.0
GRAY_STD = 40.0
# ``python -m mmdynopool.datasets.toy_scenes`` runs this file a second time
# (as __main__) after the package imported it: register over the first copy.
_AS_SCRIPT = __name__ == '__main__'


def _normalise(texture: np.ndarray) -> np.ndarray:
    texture = texture.astype(np.float32)
    return (texture - texture.mean()) / max(float(texture.std()), 1e-6)


@lru_cache(maxsize=None)
def texture_bank() -> Tuple[np.ndarray, ...]:
    """The four ``TEXTURE_SIZE``-square float32 textures (zero mean, unit
    std), in the order of :data:`TOY_CLASSES`."""
    import skimage.data
    bank = []
    for name in TOY_CLASSES[:3]:
        photo = getattr(skimage.data, name)()
        photo = cv2.resize(photo, (TEXTURE_SIZE, TEXTURE_SIZE),
                           interpolation=cv2.INTER_AREA)
        bank.append(_normalise(photo))
    # 'sand': isotropic band-pass noise, fixed seed (the same on every call).
    rng = np.random.default_rng(12345)
    noise = rng.standard_normal(
        (TEXTURE_SIZE, TEXTURE_SIZE)).astype(np.float32)
    fine = cv2.GaussianBlur(noise, (0, 0), 0.8)
    coarse = cv2.GaussianBlur(noise, (0, 0), 2.0)
    bank.append(_normalise(fine - coarse))
    return tuple(bank)


def _check_size(size: Sequence[int]) -> Tuple[int, int]:
    if (not isinstance(size, (list, tuple)) or len(size) != 2 or any(
            isinstance(s, bool) or not isinstance(s, int) for s in size)):
        raise ValueError(f'size must be a pair of ints (H, W), got {size!r}')
    h, w = size
    if h < 8 or w < 8 or h % 4 or w % 4:
        raise ValueError('size (H, W) must be multiples of 4 and at least 8, '
                         f'got {tuple(size)}')
    if max(h, w) > TEXTURE_SIZE:
        raise ValueError(f'size (H, W) must be at most {TEXTURE_SIZE} (the '
                         f'texture size), got {tuple(size)}')
    return h, w


def check_stretch(stretch: int, height: int) -> int:
    if isinstance(stretch, bool) or not isinstance(stretch, int) or \
            stretch < 2 or height % stretch:
        raise ValueError(f'stretch must be an int >= 2 that divides the '
                         f'scene height {height}, got {stretch!r}')
    return stretch


def check_variant(variant: str) -> str:
    if variant not in TOY_VARIANTS:
        raise ValueError(f'variant must be one of {TOY_VARIANTS}, got '
                         f'{variant!r}')
    return variant


def make_base_scene(
        rng: np.random.Generator,
        h: int,
        w: int,
        region_area: float = REGION_AREA) -> Tuple[np.ndarray, np.ndarray]:
    """A base scene: ``(h, w)`` float32 image (zero mean, unit contrast
    textures) and uint8 labels of a random Voronoi partition, each region one
    texture at its native scale."""
    bank = texture_bank()
    num_regions = max(2, int(round(h * w / region_area)))
    seeds = rng.uniform((0, 0), (h, w), size=(num_regions, 2))
    classes = rng.integers(0, len(TOY_CLASSES), size=num_regions)
    # At least two classes per scene, so every scene has a boundary.
    if np.all(classes == classes[0]):
        classes[rng.integers(num_regions)] = (
            classes[0] + rng.integers(1, len(TOY_CLASSES))) % len(TOY_CLASSES)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    dist = (ys[None] - seeds[:, 0, None, None])**2 + (
        xs[None] - seeds[:, 1, None, None])**2
    label = classes[np.argmin(dist, axis=0)].astype(np.uint8)
    img = np.zeros((h, w), np.float32)
    for cls in np.unique(label):
        texture = bank[cls]
        side = max(h, w)  # square crop, so it can be transposed
        y0 = rng.integers(0, TEXTURE_SIZE - side + 1)
        x0 = rng.integers(0, TEXTURE_SIZE - side + 1)
        patch = texture[y0:y0 + side, x0:x0 + side]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        if rng.random() < 0.5:
            patch = patch[::-1, :]
        if rng.random() < 0.5:  # isotropic on average (bricks are tall)
            patch = patch.T
        mask = label == cls
        img[mask] = patch[:h, :w][mask]
    return img, label


def _resize(img: np.ndarray, label: np.ndarray, h: int,
            w: int) -> Tuple[np.ndarray, np.ndarray]:
    """Image: area-averaged when shrinking, bicubic when enlarging; labels:
    nearest."""
    shrink = h * w < img.shape[0] * img.shape[1]
    img = cv2.resize(
        img, (w, h),
        interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    label = cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST)
    return img, label


def make_toy_scene(
        variant: str,
        seed: int,
        size: Sequence[int] = (64, 64),
        region_area: float = REGION_AREA,
        stretch: int = STRETCH) -> Tuple[np.ndarray, np.ndarray]:
    """One scene of a variant (see the module docstring).

    Args:
        variant (str): ``'plain'``, ``'stretched'``, ``'tiled'`` or
            ``'enlarged'``.
        seed (int | Sequence[int]): Anything ``np.random.default_rng``
            takes; the same seed gives the same scene.
        size (tuple[int, int]): ``(H, W)``, multiples of 4.
        region_area (float): Mean Voronoi region area of the base scene.
        stretch (int): Vertical stretch of ``'stretched'`` (divides H).

    Returns:
        tuple: ``img`` (H, W, 3) uint8 (gray in three channels) and
        ``label`` (H, W) uint8 in ``[0, len(TOY_CLASSES))``.
    """
    check_variant(variant)
    h, w = _check_size(size)
    rng = np.random.default_rng(seed)
    if variant == 'plain':
        img, label = make_base_scene(rng, h, w, region_area)
    elif variant == 'stretched':
        stretch = check_stretch(stretch, h)
        img, label = make_base_scene(rng, h // stretch, w, region_area)
        img, label = _resize(img, label, h, w)
    elif variant == 'tiled':
        tiles = [
            _resize(*make_base_scene(rng, h, w, region_area), h // 2, w // 2)
            for _ in range(4)
        ]
        img = np.block([[tiles[0][0], tiles[1][0]], [tiles[2][0],
                                                     tiles[3][0]]])
        label = np.block([[tiles[0][1], tiles[1][1]],
                          [tiles[2][1], tiles[3][1]]])
    else:  # enlarged
        img, label = make_base_scene(rng, h // 2, w // 2, region_area)
        img, label = _resize(img, label, h, w)
    img = np.clip(GRAY_MEAN + GRAY_STD * img, 0, 255).round().astype(np.uint8)
    img = np.ascontiguousarray(np.repeat(img[..., None], 3, axis=2))
    return img, np.ascontiguousarray(label.astype(np.uint8))


def scene_seed(data_seed: int, split: str, index: int) -> List[int]:
    """The seed of sample ``index`` of a split (independent streams)."""
    return [int(data_seed), SPLITS.index(split), int(index)]


@DATASETS.register_module(force=_AS_SCRIPT)
class ToySceneDataset(BaseSegDataset):
    """The demo's texture-segmentation scenes, made in memory on first use.

    Nothing is read from or written to disk: sample ``i`` of a split is
    ``make_toy_scene(variant, seed=(seed, split, i), size)``, produced by the
    :class:`LoadToyScene` transform at the head of the pipeline.

    Args:
        variant (str): ``'stretched'``, ``'tiled'``, ``'enlarged'`` or
            ``'plain'``.
        num_samples (int): Length of the split.
        split (str): ``'train'``, ``'val'`` or ``'test'`` (separate seeds).
        seed (int): Data seed. Default: 0.
        size (tuple[int, int]): Scene size ``(H, W)``. Default: (64, 64).
        region_area (float): Mean Voronoi region area of a base scene.
        stretch (int): Vertical stretch of the ``'stretched'`` variant.
            Default: 4.
        **kwargs: ``pipeline``, ``test_mode``, ... of ``BaseSegDataset``.
    """

    METAINFO = dict(classes=TOY_CLASSES, palette=TOY_PALETTE)

    def __init__(self,
                 variant: str,
                 num_samples: int,
                 split: str = 'train',
                 seed: int = 0,
                 size: Sequence[int] = (64, 64),
                 region_area: float = REGION_AREA,
                 stretch: int = STRETCH,
                 **kwargs) -> None:
        self.variant = check_variant(variant)
        if isinstance(
                num_samples,
                bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f'num_samples must be an int >= 1, got '
                             f'{num_samples!r}')
        if split not in SPLITS:
            raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
        self.num_samples = num_samples
        self.split = split
        self.seed = int(seed)
        self.size = _check_size(tuple(size))
        self.region_area = float(region_area)
        self.stretch = check_stretch(stretch, self.size[0])
        kwargs.setdefault('data_prefix', dict(img_path='', seg_map_path=''))
        super().__init__(**kwargs)

    def load_data_list(self) -> List[dict]:
        return [
            dict(img_path=f'toy_scenes/{self.variant}/{self.split}/{i:05d}',
                 seg_map_path=None,
                 scene_variant=self.variant,
                 scene_seed=scene_seed(self.seed, self.split, i),
                 scene_size=self.size,
                 region_area=self.region_area,
                 stretch=self.stretch,
                 label_map=self.label_map,
                 reduce_zero_label=self.reduce_zero_label,
                 seg_fields=[]) for i in range(self.num_samples)
        ]


@TRANSFORMS.register_module(force=_AS_SCRIPT)
class LoadToyScene(BaseTransform):
    """Make the scene of a :class:`ToySceneDataset` sample: adds ``img``
    (uint8 H x W x 3), ``gt_seg_map``, ``ori_shape`` and ``img_shape``, as
    ``LoadImageFromFile`` + ``LoadAnnotations`` would."""

    def transform(self, results: Dict) -> Dict:
        img, label = make_toy_scene(results['scene_variant'],
                                    results['scene_seed'],
                                    results['scene_size'],
                                    results.get('region_area', REGION_AREA),
                                    results.get('stretch', STRETCH))
        results['img'] = img
        results['gt_seg_map'] = label
        results['ori_shape'] = img.shape[:2]
        results['img_shape'] = img.shape[:2]
        results.setdefault('seg_fields', [])
        if 'gt_seg_map' not in results['seg_fields']:
            results['seg_fields'].append('gt_seg_map')
        return results


def colorize(label: np.ndarray) -> np.ndarray:
    """RGB picture of a label map in :data:`TOY_PALETTE`."""
    return np.asarray(TOY_PALETTE, np.uint8)[label]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description='Write a few toy scenes of every variant as PNGs')
    parser.add_argument('--out', default='data/demo', help='output folder')
    parser.add_argument('--num', type=int, default=4, help='scenes each')
    parser.add_argument('--seed', type=int, default=0, help='data seed')
    parser.add_argument('--size', type=int, nargs=2, default=(64, 64))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for variant in TOY_VARIANTS:
        row = []
        for i in range(args.num):
            img, label = make_toy_scene(variant,
                                        scene_seed(args.seed, 'val', i),
                                        tuple(args.size))
            row += [img, colorize(label)]
        rows.append(np.concatenate(row, axis=1))
    path = osp.join(args.out, 'toy_scenes.png')
    cv2.imwrite(path, np.concatenate(rows, axis=0)[..., ::-1])
    print(f'wrote {path} (rows: {", ".join(TOY_VARIANTS)}; image, labels)')


if __name__ == '__main__':
    main()
