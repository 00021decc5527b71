from .imresize import imresize, imresize_uint8
from .sr_dataset import (SKIMAGE_PHOTOS, SkimageSRDataset, SRPairedDataset,
                         load_skimage_photo)
from .transforms import *  # noqa: F401,F403

__all__ = [
    'SRPairedDataset', 'SkimageSRDataset', 'SKIMAGE_PHOTOS',
    'load_skimage_photo', 'imresize', 'imresize_uint8'
]
from .toy_scenes import LoadToyScene, ToySceneDataset  # noqa: E402,F401
