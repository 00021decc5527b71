"""Paired LR/HR datasets for super-resolution on mmengine's BaseDataset."""
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.registry import DATASETS

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.ppm',
                  '.webp')
VALID_SCALES = (2, 3, 4, 8)


def check_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or \
            scale not in VALID_SCALES:
        raise ValueError(f'scale must be one of {VALID_SCALES}, got '
                         f'{scale!r}')
    return scale


def list_images(folder: str, what: str) -> List[str]:
    """Sorted image file names of ``folder``, with a clear error when the
    folder is missing or holds no image."""
    if not osp.isdir(folder):
        raise FileNotFoundError(
            f'{what} folder {folder!r} does not exist; check data_root and '
            'data_prefix in the dataset config (see '
            'configs/dynopool_sr/README.md for the expected layout)')
    names = sorted(name for name in os.listdir(folder)
                   if name.lower().endswith(IMG_EXTENSIONS))
    if not names:
        raise FileNotFoundError(
            f'{what} folder {folder!r} contains no image '
            f'({", ".join(IMG_EXTENSIONS)}); '
            'put the images there or point data_prefix at the right folder')
    return names


@DATASETS.register_module()
class SRPairedDataset(BaseDataset):
    """LR/HR image pairs from folders, for x2/x3/x4 super-resolution.

    Two layouts are supported under ``data_root``:

    * HR only (``data_prefix=dict(gt='Set5/GTmod12')``): the LR image is made
      on the fly by the pipeline (``LoadSRPair`` then ``BicubicDownscale``,
      MATLAB-like antialiased bicubic), after mod-cropping the HR image to a
      multiple of ``scale``.
    * LR/HR folder pairs (``data_prefix=dict(gt='DIV2K_train_HR',
      lr='DIV2K_train_LR_bicubic/X{scale}')``): the LR image of ``0001.png``
      is ``0001{lr_suffix}.png`` (DIV2K names ``0001x2.png``; ``{scale}`` is
      filled in) or the same name.

    With ``lr_optional=True`` (default) a missing LR folder falls back to
    the first layout, so one config serves machines with and without the
    pre-made DIV2K LR images.

    Every sample is a dict with ``gt_path``, ``lr_path`` (None: make it),
    ``key`` (file stem), ``scale`` and ``dataset_name``.

    Args:
        scale (int): Upscaling factor: 2, 3, 4 or 8.
        data_root (str): Root folder of ``data_prefix``.
        data_prefix (dict): ``gt`` (HR folder) and optionally ``lr`` (LR
            folder, may contain ``{scale}``).
        lr_suffix (str): Suffix of LR stems, may contain ``{scale}``.
            Default: ``'x{scale}'`` (DIV2K).
        lr_optional (bool): Make LR on the fly when the LR folder does not
            exist instead of raising. Default: True.
        dataset_name (str, optional): Name that metrics group results by
            (e.g. ``'Set5'``). Default: the last component of ``data_root``
            (``data/Set5`` -> ``'Set5'``), else of the HR folder.
        **kwargs: ``pipeline``, ``test_mode``, ``indices``, ... of
            :class:`mmengine.dataset.BaseDataset`.
    """

    def __init__(self,
                 scale: int,
                 data_root: str = '',
                 data_prefix: Optional[Dict[str, str]] = None,
                 lr_suffix: str = 'x{scale}',
                 lr_optional: bool = True,
                 dataset_name: Optional[str] = None,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 **kwargs) -> None:
        self.scale = check_scale(scale)
        data_prefix = dict(data_prefix or {})
        if not data_prefix.get('gt'):
            raise ValueError(
                "data_prefix must name the HR folder, e.g. data_prefix="
                "dict(gt='DIV2K_train_HR'), got "
                f'{data_prefix!r}')
        if data_prefix.get('lr'):
            data_prefix['lr'] = data_prefix['lr'].format(scale=scale)
        else:  # BaseDataset joins every prefix: no None entries
            data_prefix.pop('lr', None)
        self.lr_suffix = lr_suffix.format(scale=scale)
        self.lr_optional = lr_optional
        self.dataset_name = dataset_name or osp.basename(
            osp.normpath(data_root or data_prefix['gt']))
        super().__init__(data_root=data_root,
                         data_prefix=data_prefix,
                         pipeline=list(pipeline),
                         **kwargs)

    def lr_folder(self) -> Optional[str]:
        """The LR folder to read, or None to make LR on the fly."""
        folder = self.data_prefix.get('lr')
        if not folder:
            return None
        if not osp.isdir(folder) and self.lr_optional:
            return None
        return folder

    def load_data_list(self) -> List[dict]:
        gt_folder = self.data_prefix['gt']
        gt_names = list_images(gt_folder, 'HR (data_prefix.gt)')
        lr_folder = self.lr_folder()
        lr_by_stem = {}
        if lr_folder is not None:
            lr_by_stem = {
                osp.splitext(name)[0]: name
                for name in list_images(lr_folder, 'LR (data_prefix.lr)')
            }
        data_list = []
        for name in gt_names:
            stem = osp.splitext(name)[0]
            info = dict(gt_path=osp.join(gt_folder, name),
                        lr_path=None,
                        key=stem,
                        scale=self.scale,
                        dataset_name=self.dataset_name)
            if lr_folder is not None:
                info['lr_path'] = osp.join(lr_folder,
                                           self.match_lr(stem, lr_by_stem))
            data_list.append(info)
        if lr_folder is not None and len(lr_by_stem) != len(data_list):
            unused = sorted(
                set(lr_by_stem) - {
                    osp.splitext(osp.basename(d['lr_path']))[0]
                    for d in data_list
                })
            raise ValueError(
                f'LR folder {lr_folder!r} has {len(unused)} image(s) without '
                f'an HR image in {gt_folder!r} (e.g. {unused[:3]}); remove '
                'them or fix lr_suffix')
        return data_list

    def match_lr(self, stem: str, lr_by_stem: Dict[str, str]) -> str:
        for candidate in (stem + self.lr_suffix, stem):
            if candidate in lr_by_stem:
                return lr_by_stem[candidate]
        raise FileNotFoundError(
            f"no LR image for HR image {stem!r}: expected "
            f"'{stem}{self.lr_suffix}.<ext>' or '{stem}.<ext>' in "
            f"{self.data_prefix['lr']!r}; fix lr_suffix, or drop "
            'data_prefix.lr to make LR images on the fly')


def _skimage_photo(name: str) -> np.ndarray:
    from skimage import data
    if name == 'motorcycle_left':
        return data.stereo_motorcycle()[0]
    return getattr(data, name)()


# Photos shipped inside scikit-image's wheel (no download). ``cat`` is the
# same photo as ``chelsea`` and is left out so it cannot leak into a split.
SKIMAGE_PHOTOS = ('astronaut', 'brick', 'camera', 'cell', 'chelsea', 'clock',
                  'coffee', 'coins', 'grass', 'gravel', 'hubble_deep_field',
                  'immunohistochemistry', 'moon', 'motorcycle_left', 'page',
                  'retina', 'rocket', 'text')


def load_skimage_photo(name: str) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB photo from ``skimage.data`` (gray images
    are repeated to 3 channels)."""
    if name not in SKIMAGE_PHOTOS:
        raise ValueError(
            f'unknown skimage photo {name!r}; choose from {SKIMAGE_PHOTOS} '
            '(photos that need a download are not supported)')
    img = np.asarray(_skimage_photo(name))
    if img.dtype != np.uint8:
        raise TypeError(f'skimage.data.{name} is {img.dtype}, not a uint8 '
                        'photo')
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


@DATASETS.register_module()
class SkimageSRDataset(BaseDataset):
    """Real photos shipped with scikit-image as an offline SR data set.

    Nothing is downloaded: the HR photos come from ``skimage.data`` and are
    kept in memory (decoded once); the LR images are made on the fly by the
    pipeline as for an HR-only folder (``LoadSRPair`` + ``BicubicDownscale``).
    Use disjoint ``names`` for training and evaluation.

    Args:
        names (Sequence[str]): Photos to use, from :data:`SKIMAGE_PHOTOS`.
        scale (int): Upscaling factor: 2, 3, 4 or 8.
        dataset_name (str): Name that metrics group results by.
            Default: ``'skimage'``.
        **kwargs: ``pipeline``, ``test_mode``, ... of ``BaseDataset``.
    """

    def __init__(self,
                 names: Sequence[str],
                 scale: int,
                 dataset_name: str = 'skimage',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 **kwargs) -> None:
        if isinstance(names, str) or not names:
            raise ValueError('names must be a non-empty list of skimage '
                             f'photo names from {SKIMAGE_PHOTOS}, got '
                             f'{names!r}')
        duplicates = sorted({n for n in names if list(names).count(n) > 1})
        if duplicates:
            raise ValueError(f'names lists {duplicates} more than once')
        self.names = list(names)
        self.scale = check_scale(scale)
        self.dataset_name = dataset_name
        super().__init__(pipeline=list(pipeline), **kwargs)

    def load_data_list(self) -> List[dict]:
        return [
            dict(gt=load_skimage_photo(name),
                 gt_path=f'skimage.data.{name}',
                 lr_path=None,
                 key=name,
                 scale=self.scale,
                 dataset_name=self.dataset_name) for name in self.names
        ]
