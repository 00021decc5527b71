"""The deploy form of a trained DynOPool layer."""
from typing import Sequence, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from .functional import (check_aggregation, check_feature_map, output_size,
                         pair_of_ratios)


def static_dynopool2d(x: Tensor, ratio: Tuple[float, float],
                      aggregation: str = 'max', min_size: int = 1) -> Tensor:
    """DynOPool at a fixed ratio, as ``pool(interpolate(x, 2*size), 2)``."""
    out_h = output_size(x.shape[2], ratio[0], min_size)
    out_w = output_size(x.shape[3], ratio[1], min_size)
    queries = F.interpolate(
        x, size=(2 * out_h, 2 * out_w), mode='bilinear', align_corners=False)
    if aggregation == 'max':
        return F.max_pool2d(queries, 2)
    return F.avg_pool2d(queries, 2)


@MODELS.register_module()
class StaticDynOPool(nn.Module):
    """A frozen DynOPool: no parameters, no straight-through code.

    Computes exactly what the trained :class:`DynOPool` computes, with its
    learned ratio fixed (the output size rule stays ``round(r * H)`` for any
    input size).

    Args:
        ratio (float | tuple[float, float]): The fixed ``(r_h, r_w)``.
        aggregation (str): ``'max'`` or ``'avg'``.
        min_size (int): Lower bound of each output side.
    """

    def __init__(self,
                 ratio: Sequence[float],
                 aggregation: str = 'max',
                 min_size: int = 1) -> None:
        super().__init__()
        self.ratio = pair_of_ratios(ratio, 'ratio')
        self.aggregation = check_aggregation(aggregation)
        self.min_size = int(min_size)

    def output_size(self, h: int, w: int) -> Tuple[int, int]:
        return (output_size(h, self.ratio[0], self.min_size),
                output_size(w, self.ratio[1], self.min_size))

    def forward(self, x: Tensor) -> Tensor:
        check_feature_map(x)
        return static_dynopool2d(x, self.ratio, self.aggregation,
                                 self.min_size)

    def extra_repr(self) -> str:
        return (f'ratio=({self.ratio[0]:.4f}, {self.ratio[1]:.4f}), '
                f'aggregation={self.aggregation!r}')
