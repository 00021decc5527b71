"""EDSR-baseline generators: pixel-shuffle upsampling (the baseline) and a
DynOPool tail whose upsampling ratios ``r > 1`` are learned."""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from mmdynopool.ops import DynOPool

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


def check_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
        raise ValueError(f'scale must be an integer >= 2, got {scale!r}')
    return scale


class ResidualBlock(nn.Module):
    """EDSR's residual block without BN: ``x + res_scale * conv(relu(conv))``.

    The convolutions start at 0.1x Kaiming init (as mmagic / BasicSR), so
    every block starts close to the identity and a deep stack trains stably.
    """

    def __init__(self, channels: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.res_scale = res_scale
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, a=0, mode='fan_in')
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x)))


class EDSRBody(nn.Module):
    """Mean shift, head conv, ``num_blocks`` residual blocks and a conv,
    with EDSR's long skip. Shared by both EDSR generators."""

    def __init__(self, in_channels: int, mid_channels: int, num_blocks: int,
                 res_scale: float, rgb_mean: Sequence[float]) -> None:
        super().__init__()
        if len(rgb_mean) != in_channels:
            raise ValueError(f'rgb_mean needs {in_channels} values, got '
                             f'{len(rgb_mean)}')
        self.register_buffer('mean',
                             torch.tensor(rgb_mean, dtype=torch.float32).view(
                                 1, -1, 1, 1),
                             persistent=False)
        self.head = conv3x3(in_channels, mid_channels)
        self.blocks = nn.Sequential(*[
            ResidualBlock(mid_channels, res_scale) for _ in range(num_blocks)
        ])
        self.conv_after_body = conv3x3(mid_channels, mid_channels)

    def forward(self, x: Tensor) -> Tensor:
        feat = self.head(x - self.mean)
        return feat + self.conv_after_body(self.blocks(feat))


class UpsampleSkip(nn.Module):
    """Optional global skip: the network then learns the residual over an
    interpolated input (faster convergence on small budgets)."""

    def __init__(self, mode: Optional[str]) -> None:
        super().__init__()
        if mode not in (None, 'bilinear', 'bicubic'):
            raise ValueError("upsample_skip must be None, 'bilinear' or "
                             f"'bicubic', got {mode!r}")
        self.mode = mode

    def forward(self, out: Tensor, x: Tensor, mean: Tensor) -> Tensor:
        """``out`` (the network's zero-mean output) plus either the mean
        taken off the input (EDSR) or the upsampled input."""
        if self.mode is None:
            return out + mean
        return out + F.interpolate(
            x, size=out.shape[-2:], mode=self.mode, align_corners=False)


@MODELS.register_module()
class EDSRNet(nn.Module):
    """EDSR (Lim et al., 2017) with pixel-shuffle upsampling: the baseline.

    ``scale = 2**n``: n stages of conv (c -> 4c) + PixelShuffle(2); scale 3:
    one conv (c -> 9c) + PixelShuffle(3). EDSR-baseline is
    ``mid_channels=64, num_blocks=16, res_scale=1``.

    Args:
        scale (int): Upscaling factor (2, 3, 4, 8, ...).
        in_channels (int): Image channels. Default: 3.
        mid_channels (int): Feature channels. Default: 64.
        num_blocks (int): Residual blocks. Default: 16.
        res_scale (float): Residual scaling. Default: 1.0.
        rgb_mean (Sequence[float]): Mean subtracted from the [0, 1] input
            and added back to the output. Default: DIV2K's.
        upsample_skip (str, optional): Add the ``'bilinear'`` /
            ``'bicubic'`` upsampled input to the output. Default: None
            (EDSR).
    """

    def __init__(self,
                 scale: int,
                 in_channels: int = 3,
                 mid_channels: int = 64,
                 num_blocks: int = 16,
                 res_scale: float = 1.0,
                 rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
                 upsample_skip: Optional[str] = None) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        self.body = EDSRBody(in_channels, mid_channels, num_blocks, res_scale,
                             rgb_mean)
        self.upsample = self.build_upsampler(mid_channels)
        self.conv_last = conv3x3(mid_channels, in_channels)
        self.skip = UpsampleSkip(upsample_skip)

    def build_upsampler(self, channels: int) -> nn.Module:
        """conv + PixelShuffle stages: x2 each, or one x3."""
        scale = self.scale
        if scale & (scale - 1) == 0:
            factors = [2] * int(math.log2(scale))
        elif scale == 3:
            factors = [3]
        else:
            raise ValueError(f'pixel shuffle supports scale 2**n and 3, got '
                             f'{scale}')
        layers: List[nn.Module] = []
        for factor in factors:
            layers += [
                conv3x3(channels, channels * factor**2),
                nn.PixelShuffle(factor)
            ]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv_last(self.upsample(self.body(x)))
        return self.skip(out, x, self.body.mean)


def default_stage_ratios(scale: int) -> List[float]:
    """Split ``scale`` into DynOPool stages: factors 2 first, then 3, then
    whatever is left as one stage (x4 -> [2, 2], x3 -> [3], x6 -> [2, 3])."""
    ratios, rest = [], scale
    for factor in (2, 3):
        while rest % factor == 0:
            ratios.append(float(factor))
            rest //= factor
    if rest > 1:
        ratios.append(float(rest))
    return ratios


class DynOPoolUpsampler(nn.Module):
    """Upsampling by DynOPool stages with learnable ``r > 1``, each followed
    by a 3x3 conv, then an exact resize to the target size.

    A stage ``DynOPool(r) -> conv(c, c)`` costs the same MACs as EDSR's
    ``conv(c, 4c) -> PixelShuffle(2)`` at ``r = 2``, so at initialisation
    the two tails have equal compute.

    Exact output size **[project choice]**: the learned sizes
    ``round(r * h)`` need not land on ``scale * h`` (e.g. ``r = 2.1``), so
    when the last stage's size differs from the target the features are
    resized to it (bilinear, ``align_corners=False``) before the final conv.
    At ``r = 2`` (or 3) exactly the resize is skipped; the product of the
    initial ratios equals ``scale`` so a fresh model needs no resize. The
    resize has no parameters and passes no gradient to ``alpha``: the
    ratios learn only through DynOPool's sampling positions (and the GMACs
    loss).

    Args:
        channels (int): Feature channels.
        scale (int): Target upscaling factor.
        stage_ratios (Sequence[float], optional): Initial ``r`` of each
            stage; default :func:`default_stage_ratios`.
        aggregation (str): DynOPool aggregation. Default: ``'max'``.
        ratio_range (Sequence[float]): Bounds of each stage's ``r``.
            Default: ``(1/16, 4)``.
    """

    def __init__(
        self,
        channels: int,
        scale: int,
        stage_ratios: Optional[Sequence[float]] = None,
        aggregation: str = 'max',
        ratio_range: Sequence[float] = (1.0 / 16, 4.0)
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        ratios = list(stage_ratios or default_stage_ratios(scale))
        product = math.prod(ratios)
        if not math.isclose(product, scale, rel_tol=1e-6):
            raise ValueError(f'stage_ratios {ratios} multiply to {product}, '
                             f'not the scale {scale}; give ratios whose '
                             'product is the scale')
        self.pools = nn.ModuleList([
            DynOPool(r, aggregation=aggregation, ratio_range=ratio_range)
            for r in ratios
        ])
        self.convs = nn.ModuleList(
            [conv3x3(channels, channels) for _ in ratios])

    def forward(self, x: Tensor, target_size: Tuple[int, int]) -> Tensor:
        for pool, conv in zip(self.pools, self.convs):
            x = conv(pool(x))
        # While exporting, always resize: a branch on a feature size would be
        # frozen at the traced size (an identity resize is exact anyway).
        if torch.compiler.is_exporting() or tuple(
                x.shape[-2:]) != tuple(target_size):
            x = F.interpolate(x,
                              size=target_size,
                              mode='bilinear',
                              align_corners=False)
        return x


@MODELS.register_module()
class EDSRDynOPoolNet(EDSRNet):
    """EDSR whose upsampling tail is :class:`DynOPoolUpsampler`: the network
    learns its internal resolution (``r_h``, ``r_w`` of each stage, ``r > 1``)
    and always returns exactly ``scale`` times the input size.

    Args:
        scale (int): Upscaling factor.
        stage_ratios (Sequence[float], optional): Initial ``r`` per stage
            (x4 -> [2, 2], x3 -> [3] by default).
        aggregation (str): DynOPool aggregation. Default: ``'max'``.
        ratio_range (Sequence[float]): Bounds of each ``r``.
        **kwargs: ``in_channels``, ``mid_channels``, ``num_blocks``,
            ``res_scale``, ``rgb_mean``, ``upsample_skip`` of
            :class:`EDSRNet`.
    """

    def __init__(self,
                 scale: int,
                 stage_ratios: Optional[Sequence[float]] = None,
                 aggregation: str = 'max',
                 ratio_range: Sequence[float] = (1.0 / 16, 4.0),
                 mid_channels: int = 64,
                 **kwargs) -> None:
        super().__init__(scale, mid_channels=mid_channels, **kwargs)
        self.upsample = DynOPoolUpsampler(mid_channels, scale, stage_ratios,
                                          aggregation, ratio_range)

    def build_upsampler(self, channels: int) -> nn.Module:
        return nn.Identity()  # replaced in __init__ (needs the pool args)

    def forward(self, x: Tensor) -> Tensor:
        target = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
        out = self.conv_last(self.upsample(self.body(x), target))
        return self.skip(out, x, self.body.mean)
