"""A small backbone for the CPU demo: DynOPool at every resizing step, and
its fixed-stride twin."""
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor

from mmdynopool.ops import DynOPool

RESIZE_MODES = ('dynopool', 'maxpool')


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


@MODELS.register_module()
class ToyNet(BaseModule):
    """A VGG-like backbone of a stem and ``len(stage_channels)`` stages, each
    stage opening with a resizing step.

    ``resize='dynopool'``: every resizing step is a
    :class:`~mmdynopool.ops.DynOPool` initialised at ``r = 0.5`` (the stride-2
    max-pool it replaces). ``resize='maxpool'``: the fixed-stride twin, a 2x2
    max-pool of stride 2 in the same places. At ``r = 0.5`` and even sizes a
    DynOPool *is* that max-pool, so both start as the same function with the
    same parameters (apart from ``alpha``) and the same MACs.

    The resizing layers are ``pool1``, ``pool2``, ... (in a segmentor:
    ``backbone.pool1``, ...); stage ``i`` is ``stage{i}``.

    Args:
        in_channels (int): Input channels. Default: 3.
        stem_channels (int): Channels of the full-resolution stem.
            Default: 16.
        stage_channels (Sequence[int]): Channels of the stages.
            Default: (32, 64, 96).
        num_convs (int): 3x3 conv-BN-ReLU blocks per stage. Default: 2.
        resize (str): ``'dynopool'`` or ``'maxpool'``. Default: 'dynopool'.
        dynopool_cfg (dict, optional): Extra :class:`DynOPool` arguments
            (``aggregation``, ``ratio_range``, ``min_size``).
        out_indices (Sequence[int], optional): Outputs to return: 0 is the
            stem, ``i`` the ``i``-th stage. Default: all, ``(0, 1, ...,
            len(stage_channels))``.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: int = 3,
                 stem_channels: int = 16,
                 stage_channels: Sequence[int] = (32, 64, 96),
                 num_convs: int = 2,
                 resize: str = 'dynopool',
                 dynopool_cfg: Optional[dict] = None,
                 out_indices: Optional[Sequence[int]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if resize not in RESIZE_MODES:
            raise ValueError(f'resize must be one of {RESIZE_MODES}, got '
                             f'{resize!r}')
        if not stage_channels:
            raise ValueError('stage_channels must name at least one stage')
        if isinstance(num_convs, bool) or not isinstance(
                num_convs, int) or num_convs < 1:
            raise ValueError(f'num_convs must be an int >= 1, got '
                             f'{num_convs!r}')
        dynopool_cfg = dict(dynopool_cfg or {})
        if 'init_ratio' in dynopool_cfg:
            raise ValueError('dynopool_cfg must not set init_ratio: every '
                             'DynOPool starts at 0.5, the stride-2 step it '
                             'replaces')
        num_stages = len(stage_channels)
        out_indices = tuple(range(num_stages + 1)) if out_indices is None \
            else tuple(out_indices)
        if not out_indices or any(i < 0 or i > num_stages
                                  for i in out_indices):
            raise ValueError(f'out_indices must lie in [0, {num_stages}], '
                             f'got {out_indices}')
        self.resize = resize
        self.out_indices = out_indices
        self.num_stages = num_stages
        self.stem = conv_bn_relu(in_channels, stem_channels)
        channels = stem_channels
        for i, out_channels in enumerate(stage_channels, start=1):
            if resize == 'dynopool':
                pool = DynOPool(init_ratio=0.5, **dynopool_cfg)
            else:
                pool = nn.MaxPool2d(kernel_size=2, stride=2)
            blocks = [conv_bn_relu(channels, out_channels)]
            blocks += [
                conv_bn_relu(out_channels, out_channels)
                for _ in range(num_convs - 1)
            ]
            self.add_module(f'pool{i}', pool)
            self.add_module(f'stage{i}', nn.Sequential(*blocks))
            channels = out_channels

    @property
    def resize_layers(self) -> 'OrderedDict[str, nn.Module]':
        """``{'pool1': layer, ...}`` in network order."""
        return OrderedDict((f'pool{i}', getattr(self, f'pool{i}'))
                           for i in range(1, self.num_stages + 1))

    @property
    def dynopools(self) -> 'OrderedDict[str, nn.Module]':
        """The resizing layers that are DynOPools (empty for the twin)."""
        return OrderedDict((name, layer)
                           for name, layer in self.resize_layers.items()
                           if isinstance(layer, DynOPool))

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self.stem(x)
        outs: List[Tensor] = [x] if 0 in self.out_indices else []
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f'stage{i}')(getattr(self, f'pool{i}')(x))
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
