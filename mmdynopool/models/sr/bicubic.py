"""The bicubic baseline: no parameters, MATLAB-like bicubic upscaling."""
import torch.nn as nn
from mmengine.registry import MODELS
from torch import Tensor

from mmdynopool.datasets.imresize import imresize
from .edsr import check_scale


@MODELS.register_module()
class BicubicUpsampler(nn.Module):
    """Upscale by ``scale`` with MATLAB's bicubic ``imresize`` (the
    "Bicubic" row of SR tables; see :mod:`mmdynopool.datasets.imresize`).

    Args:
        scale (int): Upscaling factor.
    """

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = check_scale(scale)

    def forward(self, x: Tensor) -> Tensor:
        return imresize(x, scale=float(self.scale))
