"""Encoder-decoder restorer whose stage resolutions are all learned."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from mmdynopool.ops import DynOPool
from .edsr import (DIV2K_RGB_MEAN, DynOPoolUpsampler, ResidualBlock,
                   UpsampleSkip, check_scale, conv3x3)


def resize_to(x: Tensor, ref: Tensor) -> Tensor:
    """``x`` resized (bilinear) to ``ref``'s spatial size when they differ.

    Learned ratios and odd sizes make a decoder map differ from its
    encoder skip by a pixel or more; the skip follows the decoder.
    """
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    return F.interpolate(x,
                         size=ref.shape[-2:],
                         mode='bilinear',
                         align_corners=False)


def res_blocks(channels: int, num: int) -> nn.Sequential:
    return nn.Sequential(*[ResidualBlock(channels) for _ in range(num)])


class DownStage(nn.Module):
    """``DynOPool(r < 1)`` then a conv that changes the width."""

    def __init__(self, in_channels: int, out_channels: int, ratio: float,
                 aggregation: str, ratio_range: Sequence[float]) -> None:
        super().__init__()
        self.pool = DynOPool(ratio, aggregation, ratio_range)
        self.conv = conv3x3(in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(self.pool(x)))


class UpStage(nn.Module):
    """``DynOPool(r > 1)``, conv, skip (resized to the decoder's size)
    fused by concatenation and a 1x1 conv, then residual blocks."""

    def __init__(self, in_channels: int, out_channels: int, ratio: float,
                 num_blocks: int, aggregation: str,
                 ratio_range: Sequence[float]) -> None:
        super().__init__()
        self.pool = DynOPool(ratio, aggregation, ratio_range)
        self.conv = conv3x3(in_channels, out_channels)
        self.fuse = nn.Conv2d(2 * out_channels, out_channels, 1)
        self.blocks = res_blocks(out_channels, num_blocks)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.relu(self.conv(self.pool(x)))
        x = self.fuse(torch.cat([x, resize_to(skip, x)], dim=1))
        return self.blocks(x)


@MODELS.register_module()
class DynOPoolEncDecSRNet(nn.Module):
    """U-Net-like SR restorer: DynOPool stages learn ``r < 1`` on the way
    down, ``r > 1`` on the way up, and ``r > 1`` in the SR tail.

    LR image -> head conv -> ``len(channel_mults) - 1`` down stages
    (``DynOPool(r=down_ratio)``, conv, residual blocks) -> up stages
    (``DynOPool(r=1/down_ratio)``, conv, fuse the encoder skip resized to
    the decoder's size, residual blocks) -> long skip from the head (again
    resized) -> :class:`DynOPoolUpsampler` (stages of learned ``r > 1``,
    exact resize to ``scale x`` the input) -> conv to RGB. The output is
    always exactly ``scale`` times the input size.

    Args:
        scale (int): Upscaling factor.
        in_channels (int): Image channels. Default: 3.
        mid_channels (int): Width of the first level. Default: 64.
        channel_mults (Sequence[int]): Width multiplier per level; its
            length - 1 is the number of down/up stages. Default: (1, 2, 2).
        num_blocks (int): Residual blocks per level. Default: 2.
        down_ratio (float): Initial ``r`` of the down stages (the up stages
            start at its inverse). Default: 0.5.
        stage_ratios (Sequence[float], optional): Initial ``r`` of the SR
            tail's stages (default: x4 -> [2, 2]).
        aggregation (str): DynOPool aggregation. Default: ``'max'``.
        ratio_range (Sequence[float]): Bounds of every ``r``.
        rgb_mean (Sequence[float]): Mean subtracted from the input.
        upsample_skip (str, optional): As in :class:`EDSRNet`.
    """

    def __init__(self,
                 scale: int,
                 in_channels: int = 3,
                 mid_channels: int = 64,
                 channel_mults: Sequence[int] = (1, 2, 2),
                 num_blocks: int = 2,
                 down_ratio: float = 0.5,
                 stage_ratios: Optional[Sequence[float]] = None,
                 aggregation: str = 'max',
                 ratio_range: Sequence[float] = (1.0 / 16, 4.0),
                 rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
                 upsample_skip: Optional[str] = None) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        if len(channel_mults) < 2:
            raise ValueError('channel_mults needs at least 2 levels (one '
                             f'down/up stage), got {tuple(channel_mults)}')
        if not 0 < down_ratio < 1:
            raise ValueError(f'down_ratio must be in (0, 1), got '
                             f'{down_ratio}')
        widths = [mid_channels * m for m in channel_mults]
        self.register_buffer('mean',
                             torch.tensor(rgb_mean, dtype=torch.float32).view(
                                 1, -1, 1, 1),
                             persistent=False)
        self.head = conv3x3(in_channels, widths[0])
        self.enc_blocks = nn.ModuleList(
            [res_blocks(w, num_blocks) for w in widths[:-1]])
        self.downs = nn.ModuleList([
            DownStage(widths[i], widths[i + 1], down_ratio, aggregation,
                      ratio_range) for i in range(len(widths) - 1)
        ])
        self.bottleneck = res_blocks(widths[-1], num_blocks)
        self.ups = nn.ModuleList([
            UpStage(widths[i + 1], widths[i], 1.0 / down_ratio, num_blocks,
                    aggregation, ratio_range)
            for i in reversed(range(len(widths) - 1))
        ])
        self.conv_after_body = conv3x3(widths[0], widths[0])
        self.upsample = DynOPoolUpsampler(widths[0], scale, stage_ratios,
                                          aggregation, ratio_range)
        self.conv_last = conv3x3(widths[0], in_channels)
        self.skip = UpsampleSkip(upsample_skip)

    def forward(self, x: Tensor) -> Tensor:
        target = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
        head = self.head(x - self.mean)
        feat, skips = head, []
        for blocks, down in zip(self.enc_blocks, self.downs):
            feat = blocks(feat)
            skips.append(feat)
            feat = down(feat)
        feat = self.bottleneck(feat)
        for up, skip in zip(self.ups, reversed(skips)):
            feat = up(feat, skip)
        feat = self.conv_after_body(feat) + resize_to(head, feat)
        out = self.conv_last(self.upsample(feat, target))
        return self.skip(out, x, self.mean)
