"""DynOPoolBackbone: any mmseg backbone, its resizing steps found by rule."""
import copy
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmdynopool.models.backbones import (ConversionError, ResizeStep,
                                         convert_backbone)
from mmdynopool.ops import DynOPool

SMALL_HRNET = dict(extra=dict(
    stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK',
                num_blocks=(1, ), num_channels=(8, )),
    stage2=dict(num_modules=1, num_branches=2, block='BASIC',
                num_blocks=(1, 1), num_channels=(4, 8)),
    stage3=dict(num_modules=1, num_branches=3, block='BASIC',
                num_blocks=(1, 1, 1), num_channels=(4, 8, 16)),
    stage4=dict(num_modules=1, num_branches=4, block='BASIC',
                num_blocks=(1, 1, 1, 1), num_channels=(4, 8, 16, 32))))
SMALL_SWIN = dict(embed_dims=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1),
                  window_size=2, pretrain_img_size=64)


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


def build(backbone, **kwargs):
    return MODELS.build(
        dict(type='DynOPoolBackbone', backbone=backbone, **kwargs))


def shapes(outputs):
    return [tuple(o.shape) for o in outputs]


def set_ratio(layer, r_h, r_w):
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([1 / r_h, 1 / r_w]))


def assert_keys_are_the_plain_ones(converted, plain):
    ours, theirs = converted.state_dict(), plain.state_dict()
    alphas = {f'{n}.alpha' for n in converted.dynopool_names.values()}
    assert set(ours) - set(theirs) == alphas
    assert set(theirs) <= set(ours)
    result = converted.load_state_dict(theirs, strict=False)
    assert set(result.missing_keys) == alphas and not result.unexpected_keys


def test_resnet_steps_by_rule_and_parameter_names_kept():
    cfg = dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8)
    net = build(cfg)
    plain = MODELS.build(cfg)
    assert type(net) is type(plain)
    # Stem conv (DynOPool after its BN + ReLU), the max-pool (replaced),
    # and the strided residual blocks (DynOPool before the block, shared by
    # the main path and the shortcut).
    assert dict(net.dynopool_names) == {
        'stem.0': 'stem.2.dynopool', 'maxpool': 'maxpool',
        'layer2.0': 'layer2.0.dynopool', 'layer3.0': 'layer3.0.dynopool',
        'layer4.0': 'layer4.0.dynopool'
    }
    assert net.layer2[0].downsample[0].stride == (1, 1)
    assert net.layer2[0].conv1.stride == (1, 1)
    assert net.dynopool_skipped == {}
    assert_keys_are_the_plain_ones(net, plain)
    x = torch.rand(1, 3, 64, 64)
    net.eval(), plain.eval()
    assert shapes(net(x)) == shapes(plain(x))
    set_ratio(net.layer2[0].dynopool, 0.75, 0.5)
    assert [o.shape[2:] for o in net(x)][1] == (12, 8)


def test_named_steps_and_bad_arguments():
    cfg = dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8)
    net = build(cfg, steps=['layer2.0'])
    assert list(net.dynopool_names) == ['layer2.0']
    assert net.stem[0].stride == (2, 2)
    with pytest.raises(ValueError, match=r"unknown steps \['layer9'\].*"
                       "found in this backbone are"):
        build(cfg, steps=['layer9'])
    with pytest.raises(ValueError, match="steps must be 'auto'"):
        build(cfg, steps='all')
    with pytest.raises(TypeError, match='backbone must be the config dict'):
        MODELS.build(dict(type='DynOPoolBackbone', backbone='ResNet'))
    with pytest.raises(ValueError, match='dynopool_cfg has unknown keys'):
        build(cfg, dynopool_cfg=dict(init_ratio=0.5))


def test_hrnet_transitions_learn_and_fuse_layers_follow():
    net = build(dict(type='HRNet', **SMALL_HRNET))
    assert list(net.dynopool_names) == [
        'conv1', 'conv2', 'transition1.1.0.0', 'transition2.2.0.0',
        'transition3.3.0.0'
    ]
    assert 'stage4.0.fuse_layers.3.0' in net.dynopool_followers
    assert 'follows the size of branch 1' in net.dynopool_skipped[
        'stage2.0.fuse_layers.1.0.0.0']
    net.train()
    set_ratio(net.get_submodule(net.dynopool_names['transition1.1.0.0']),
              0.6, 0.4)
    outputs = net(torch.rand(2, 3, 64, 64))
    # Branch 1 at the learned ratio of 16x16: 10x6; the fuse downsampler
    # from branch 0 followed it.
    assert [tuple(o.shape[2:]) for o in outputs][:2] == [(16, 16), (10, 6)]
    sum(o.mean() for o in outputs).backward()
    for name in net.dynopool_names.values():
        assert net.get_submodule(name).alpha.grad is not None, name


def test_swin_patch_embedding_and_token_merging():
    cfg = dict(type='SwinTransformer', **SMALL_SWIN)
    net, plain = build(cfg), MODELS.build(cfg)
    assert list(net.dynopool_names) == [
        'patch_embed.projection', 'stages.0.downsample',
        'stages.1.downsample', 'stages.2.downsample'
    ]
    assert net.patch_embed.projection.padding == 'same'
    assert_keys_are_the_plain_ones(net, plain)
    x = torch.rand(1, 3, 64, 64)
    net.eval(), plain.eval()
    assert shapes(net(x)) == shapes(plain(x))
    set_ratio(net.stages[0].downsample.dynopool, 0.4, 0.6)
    assert [tuple(o.shape[2:]) for o in net(x)][1] == (6, 10)


def test_unconvertible_layers_are_skipped_with_a_reason():

    class Toy(nn.Module):

        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(3, 4, 2, stride=2)  # converted, 'same'
            self.valid = nn.Conv2d(4, 4, 3, stride=2)  # no padding: skipped
            self.shared = nn.MaxPool2d(2)  # used twice: skipped
            self.up = nn.ConvTranspose2d(4, 4, 2, stride=2)

        def forward(self, x):
            x = self.shared(self.valid(self.patch(x)))
            return self.up(self.shared(x))

    net = convert_backbone(Toy())
    assert list(net.dynopool_names) == ['patch']
    assert 'would change the feature size' in net.dynopool_skipped['valid']
    assert 'runs 2 times per forward' in net.dynopool_skipped['shared']
    assert 'transposed convolution' in net.dynopool_skipped['up']


class TwoPaths(nn.Module):
    """Two strided paths of the root, added: a learned ratio on one breaks
    the sum (the root is no block to put a DynOPool in front of)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Conv2d(3, 4, 3, stride=2, padding=1)

    def forward(self, x):
        return self.head(self.conv(x) + self.pool(x))


def test_a_step_whose_ratio_breaks_the_forward_is_skipped():
    net = convert_backbone(TwoPaths(), rebuild=TwoPaths)
    assert list(net.dynopool_names) == ['head']
    assert 'breaks the forward' in net.dynopool_skipped['conv']
    # Without a way to rebuild, it is an error naming the steps.
    with pytest.raises(ConversionError, match="steps {'conv'"):
        convert_backbone(TwoPaths())


def test_shape_mismatch_at_build_names_the_step():
    with pytest.raises(ConversionError, match='first wrong step: head'):
        convert_backbone(
            TwoPaths(),
            steps=dict(head=ResizeStep(host='head', position='after',
                                       init_ratio=0.25)))


def test_copies_keep_working():
    net = build(dict(type='MobileNetV3', arch='small', out_indices=(0, 1)))
    # The stem conv and the strided depthwise convs of layers 1 and 2
    # (mmseg's d8 small net dilates the later ones).
    assert list(net.dynopool_names) == [
        'layer0.conv', 'layer1.depthwise_conv.conv',
        'layer2.depthwise_conv.conv'
    ]
    x = torch.rand(1, 3, 64, 64)
    net.eval()
    expected = shapes(net(x))
    for other in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        other.eval()
        assert shapes(other(x)) == expected
        assert sum(isinstance(m, DynOPool) for m in other.modules()) == 3
