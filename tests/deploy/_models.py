"""Small models for the deployment tests (CPU, seconds)."""
import copy

import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.registry import MODELS, init_default_scope

from mmdynopool.ops import DynOPool

from tests.tiny_segmentor import (DATA_PREPROCESSOR, FCN_HEAD, NUM_CLASSES,
                                  RESNET_D8)

SEGMENTOR = dict(
    type='DynOPoolEncoderDecoder',
    data_preprocessor=DATA_PREPROCESSOR,
    backbone=RESNET_D8,
    decode_head=FCN_HEAD,
    budget_loss=dict(type='GMACsLoss', loss_weight=1.0),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# Anisotropic, non-power-of-two; one stage upsamples (network order).
SEGMENTOR_RATIOS = [(0.55, 0.7), (0.5, 0.6), (0.8, 0.45), (1.3, 0.9),
                    (0.7, 1.2)]


class ToyNet(nn.Module):
    """conv -> DynOPool(max) -> conv -> DynOPool(avg, upsampling, min_size)
    -> conv."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1),
                                  nn.BatchNorm2d(8), nn.ReLU())
        self.pool1 = DynOPool((0.37, 0.61))
        self.mid = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.pool2 = DynOPool((1.45, 0.8), aggregation='avg', min_size=3)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        return self.head(self.pool2(self.mid(self.pool1(self.stem(x)))))


def set_ratios(model, ratios):
    """Give the DynOPools, in network order, the ratios ``(r_h, r_w)``."""
    pools = [m for m in model.modules() if isinstance(m, DynOPool)]
    assert len(pools) == len(ratios)
    with torch.no_grad():
        for pool, (r_h, r_w) in zip(pools, ratios):
            pool.alpha.copy_(torch.tensor([1.0 / r_h, 1.0 / r_w]))
    return model


def build_segmentor(ratios=SEGMENTOR_RATIOS):
    init_default_scope('mmseg')
    model = MODELS.build(ConfigDict(copy.deepcopy(SEGMENTOR)))
    return set_ratios(model, ratios).eval()


def build_sr(ratios=((2.3, 1.7), (1.9, 2.6)), scale=4):
    model = MODELS.build(
        dict(
            type='SRModel',
            generator=dict(
                type='EDSRDynOPoolNet',
                scale=scale,
                mid_channels=8,
                num_blocks=1)))
    return set_ratios(model, ratios).eval()
