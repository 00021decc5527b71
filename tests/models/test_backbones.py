"""DynOPool backbones: mmseg backbones whose stage resolutions are learned."""
import copy
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.registry import MODELS, init_default_scope
from torch.nn.modules.conv import _ConvNd

from mmdynopool.models.backbones import (DynOPoolMixVisionTransformer,
                                         DynOPoolMobileNetV2, DynOPoolResNet,
                                         DynOPoolResNetV1c,
                                         DynOPoolResNetV1d, ResizeStep,
                                         apply_resize_step)
from mmdynopool.models.backbones.surgery import strided_layers
from mmdynopool.ops import DynOPool

# Small widths keep every test fast; the layer structure is the real one.
SMALL_RESNET = dict(stem_channels=8, base_channels=8)
D8 = dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
          contract_dilation=True)
SMALL_MIT = dict(embed_dims=8, num_layers=[1, 1, 1, 1],
                 num_heads=[1, 1, 2, 2])
SMALL_MOBILENET_D8 = dict(widen_factor=0.25, strides=(1, 2, 2, 1, 1, 1, 1),
                          dilations=(1, 1, 1, 2, 2, 4, 4),
                          out_indices=(1, 2, 4, 6))


def set_ratio(layer: DynOPool, r_h: float, r_w: float) -> None:
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([1.0 / r_h, 1.0 / r_w]))


def sizes(outputs):
    return [tuple(out.shape[2:]) for out in outputs]


def parent_of(backbone: nn.Module) -> nn.Module:
    """The mmseg backbone the DynOPool one subclasses, built alike."""
    for cls in type(backbone).__mro__[1:]:
        if cls.__module__.startswith('mmseg.'):
            return cls
    raise AssertionError('no mmseg parent')


def assert_parent_state_dict_loads(backbone, parent):
    """Same keys as the parent plus one ``alpha`` per DynOPool; a parent
    checkpoint loads with strict=False and only the alphas are missing."""
    ours, theirs = backbone.state_dict(), parent.state_dict()
    extra = set(ours) - set(theirs)
    assert set(theirs) <= set(ours)
    names = backbone.dynopool_names.values()
    assert extra == {f'{name}.alpha' for name in names}
    for key in theirs:
        assert ours[key].shape == theirs[key].shape, key
    result = backbone.load_state_dict(theirs, strict=False)
    assert set(result.missing_keys) == extra
    assert not result.unexpected_keys
    for key, value in theirs.items():
        torch.testing.assert_close(backbone.state_dict()[key], value)


# -- ResNet ---------------------------------------------------------------
@pytest.mark.parametrize('depth', [18, 34, 50, 101, 152])
def test_resnetv1c_all_depths_keep_parent_keys(depth):
    backbone = DynOPoolResNetV1c(depth=depth, **SMALL_RESNET, **D8)
    parent = parent_of(backbone)(depth=depth, **SMALL_RESNET, **D8)
    assert isinstance(backbone, type(parent))
    assert list(backbone.dynopool_names) == [
        'stem', 'maxpool', 'layer2', 'layer3', 'layer4'
    ]
    # Every resizing step was replaced: nothing strided is left.
    assert strided_layers(backbone) == []
    assert_parent_state_dict_loads(backbone, parent)


@pytest.mark.parametrize('depth', [18, 50])
def test_resnetv1c_stage_sizes_follow_learned_ratios(depth):
    backbone = DynOPoolResNetV1c(depth=depth, **SMALL_RESNET, **D8)
    backbone.eval()
    # The stock recipe at init: 1/4, 1/8, 1/8, 1/8 (the -d8 output stride).
    assert sizes(backbone(torch.rand(1, 3, 64, 64))) == [(16, 16), (8, 8),
                                                         (8, 8), (8, 8)]
    pools = backbone.dynopools
    set_ratio(pools['stem'], 0.5, 0.75)  # 64x64 -> 32x48
    set_ratio(pools['layer2'], 0.75, 0.5)  # 16x24 -> 12x12
    set_ratio(pools['layer3'], 1.25, 1.0)  # 12x12 -> 15x12 (upsampling)
    set_ratio(pools['layer4'], 0.6, 1.5)  # 15x12 -> 9x18
    outputs = backbone(torch.rand(2, 3, 64, 64))
    assert sizes(outputs) == [(16, 24), (12, 12), (15, 12), (9, 18)]
    assert outputs[3].shape[:2] == (2, backbone.feat_dim)


def test_resnet_replaced_steps_have_stride_one_and_right_init():
    backbone = DynOPoolResNetV1c(depth=50, **SMALL_RESNET, **D8)
    stem_conv = backbone.stem[0]
    assert stem_conv.stride == (1, 1)
    block = backbone.layer2[0]
    assert block.conv2.stride == (1, 1)  # pytorch style: the 3x3 had it
    assert block.downsample[0].stride == (1, 1)
    ratios = {step: layer.ratio for step, layer in backbone.dynopools.items()}
    assert ratios == {
        'stem': (0.5, 0.5), 'maxpool': (0.5, 0.5), 'layer2': (0.5, 0.5),
        'layer3': (1.0, 1.0), 'layer4': (1.0, 1.0)
    }
    # The dilated stages keep their dilation (contract_dilation halves the
    # first block's, as in mmseg).
    assert backbone.layer3[0].conv2.dilation == (1, 1)
    assert backbone.layer3[1].conv2.dilation == (2, 2)
    assert backbone.layer4[1].conv2.dilation == (4, 4)


def test_resnet_shortcut_sees_the_same_resize_as_main_path():
    backbone = DynOPoolResNetV1c(depth=50, **SMALL_RESNET, **D8)
    backbone.eval()
    block = backbone.layer2[0]
    set_ratio(block.dynopool, 0.6, 0.85)  # non-power-of-two, anisotropic
    x = torch.rand(1, block.conv1.in_channels, 15, 20)
    out = block(x)
    assert out.shape[2:] == (9, 17)
    # The hook resizes once, then the stride-1 block runs as usual: both
    # paths saw the same resized input (shapes would not add up otherwise).
    resized = block.dynopool(x)
    torch.testing.assert_close(out, block.forward(resized))
    assert block.downsample(resized).shape == out.shape


def test_resnet_caffe_style_moves_stride_off_conv1():
    backbone = DynOPoolResNet(depth=50, style='caffe', **SMALL_RESNET)
    assert backbone.layer2[0].conv1.stride == (1, 1)
    assert strided_layers(backbone) == []
    # Plain ResNet: the 7x7 stem conv, DynOPool after the stem ReLU.
    assert backbone.dynopool_names['stem'] == 'relu.dynopool'
    assert backbone.conv1.stride == (1, 1)
    backbone.eval()
    out = backbone(torch.rand(1, 3, 32, 32))
    assert sizes(out) == [(8, 8), (4, 4), (2, 2), (1, 1)]


def test_resnetv1d_avg_down_pool_becomes_identity():
    backbone = DynOPoolResNetV1d(depth=18, **SMALL_RESNET)
    backbone.eval()
    assert isinstance(backbone.layer2[0].downsample[0], nn.Identity)
    set_ratio(backbone.dynopools['layer3'], 0.7, 0.4)
    assert sizes(backbone(torch.rand(1, 3, 64, 64))) == [(16, 16), (8, 8),
                                                         (6, 3), (3, 2)]
    assert_parent_state_dict_loads(
        backbone, parent_of(backbone)(depth=18, **SMALL_RESNET))


def test_resnet_alpha_receives_gradient():
    backbone = DynOPoolResNetV1c(depth=18, **SMALL_RESNET, **D8)
    for layer in backbone.dynopools.values():
        set_ratio(layer, 0.55, 0.7)  # away from the kinks at r = 0.5
    loss = sum(out.square().mean() for out in backbone(torch.rand(2, 3, 48,
                                                                  56)))
    loss.backward()
    for step, layer in backbone.dynopools.items():
        assert layer.alpha.grad is not None, step
        assert torch.isfinite(layer.alpha.grad).all(), step
        assert layer.alpha.grad.abs().sum() > 0, step


def test_dynopool_steps_selects_and_validates():
    backbone = DynOPoolResNetV1c(
        depth=18, dynopool_steps=['layer2', 'maxpool'], **SMALL_RESNET)
    # Network order, whatever the order given.
    assert list(backbone.dynopool_names) == ['maxpool', 'layer2']
    assert backbone.stem[0].stride == (2, 2)  # not replaced
    assert backbone.layer3[0].conv1.stride == (2, 2)  # BasicBlock
    backbone.eval()
    assert sizes(backbone(torch.rand(1, 3, 64, 64))) == [
        (16, 16), (8, 8), (4, 4), (2, 2)
    ]
    # A stage without a resizing step may still learn one, from r = 1.
    backbone = DynOPoolResNetV1c(
        depth=18, dynopool_steps=['layer1'], **SMALL_RESNET)
    assert backbone.dynopools['layer1'].ratio == (1.0, 1.0)
    with pytest.raises(ValueError, match="unknown steps \\['layer5'\\]"):
        DynOPoolResNetV1c(depth=18, dynopool_steps=['layer5'])
    with pytest.raises(TypeError, match='list of step names'):
        DynOPoolResNetV1c(depth=18, dynopool_steps='stem')
    with pytest.raises(ValueError, match='twice'):
        DynOPoolResNetV1c(depth=18, dynopool_steps=['stem', 'stem'])


def test_dynopool_cfg_is_passed_and_validated():
    backbone = DynOPoolResNetV1c(
        depth=18,
        dynopool_cfg=dict(aggregation='avg', ratio_range=(0.25, 2),
                          min_size=2),
        **SMALL_RESNET)
    for layer in backbone.dynopools.values():
        assert layer.aggregation == 'avg'
        assert layer.ratio_range == (0.25, 2.0)
        assert layer.min_size == 2
    with pytest.raises(ValueError, match="unknown keys \\['init_ratio'\\]"):
        DynOPoolResNetV1c(depth=18, dynopool_cfg=dict(init_ratio=0.5))
    with pytest.raises(TypeError, match='dynopool_cfg must be a dict'):
        DynOPoolResNetV1c(depth=18, dynopool_cfg='max')
    # The replaced step's scale must lie in ratio_range.
    with pytest.raises(ValueError, match='widen ratio_range'):
        DynOPoolResNetV1c(depth=18, dynopool_cfg=dict(ratio_range=(0.6, 2)))


def test_init_weights_keeps_alpha_and_loads_parent_checkpoint(tmp_path):
    parent = parent_of(DynOPoolResNetV1c(depth=18))(depth=18, **SMALL_RESNET,
                                                     **D8)
    checkpoint = tmp_path / 'resnet18_v1c.pth'
    torch.save({'state_dict': parent.state_dict()}, checkpoint)
    # Default (Kaiming/Constant) initialisation leaves alpha alone.
    backbone = DynOPoolResNetV1c(depth=18, **SMALL_RESNET, **D8)
    backbone.init_weights()
    assert backbone.dynopools['layer2'].ratio == (0.5, 0.5)
    # ``pretrained`` (as in mmseg's recipes) loads the parent's weights.
    backbone = DynOPoolResNetV1c(
        depth=18, pretrained=str(checkpoint), **SMALL_RESNET, **D8)
    backbone.init_weights()
    torch.testing.assert_close(backbone.stem[0].weight, parent.stem[0].weight)
    assert backbone.dynopools['layer3'].ratio == (1.0, 1.0)


def test_frozen_stages_freeze_their_dynopools():
    backbone = DynOPoolResNetV1c(depth=18, frozen_stages=1, **SMALL_RESNET)
    pools = backbone.dynopools
    assert not pools['stem'].alpha.requires_grad  # inside the frozen stem
    assert pools['layer2'].alpha.requires_grad


def test_registered_and_built_by_mmseg_configs():
    init_default_scope('mmseg')
    backbone = MODELS.build(
        dict(type='DynOPoolResNetV1c', depth=18, **SMALL_RESNET))
    assert isinstance(backbone, DynOPoolResNetV1c)


def test_deepcopy_and_pickle_keep_the_dynopools():
    backbone = DynOPoolResNetV1c(depth=18, **SMALL_RESNET, **D8)
    backbone.eval()
    set_ratio(backbone.dynopools['layer2'], 0.7, 0.45)
    x = torch.rand(1, 3, 40, 40)
    expected = backbone(x)
    for clone in (copy.deepcopy(backbone),
                  pickle.loads(pickle.dumps(backbone))):
        # The clone's hooks use the clone's own DynOPools.
        set_ratio(backbone.dynopools['layer2'], 0.5, 0.5)
        assert sizes(clone(x)) == sizes(expected)
        for a, b in zip(clone(x), expected):
            torch.testing.assert_close(a, b)
        set_ratio(backbone.dynopools['layer2'], 0.7, 0.45)


def test_static_deploy_form_can_replace_attached_dynopools():
    backbone = DynOPoolResNetV1c(depth=18, **SMALL_RESNET, **D8)
    backbone.eval()
    set_ratio(backbone.dynopools['layer2'], 0.65, 0.8)
    x = torch.rand(1, 3, 48, 48)
    expected = backbone(x)
    for name in backbone.dynopool_names.values():
        parent_name, _, child = name.rpartition('.')
        parent = backbone.get_submodule(parent_name) if parent_name \
            else backbone
        setattr(parent, child, backbone.get_submodule(name).to_static())
    for a, b in zip(backbone(x), expected):
        torch.testing.assert_close(a, b)


# -- MobileNetV2 ------------------------------------------------------------
def test_mobilenet_v2_d8():
    backbone = DynOPoolMobileNetV2(**SMALL_MOBILENET_D8)
    backbone.eval()
    # stem, strided layers 2 and 3, dilated layers 4 (d2) and 6 (d4).
    assert list(backbone.dynopool_names) == [
        'stem', 'layer2', 'layer3', 'layer4', 'layer6'
    ]
    assert backbone.dynopools['layer4'].ratio == (1.0, 1.0)
    assert strided_layers(backbone) == []
    assert sizes(backbone(torch.rand(1, 3, 64, 64))) == [(16, 16), (8, 8),
                                                         (8, 8), (8, 8)]
    set_ratio(backbone.dynopools['stem'], 0.75, 0.5)  # 48x32
    set_ratio(backbone.dynopools['layer3'], 0.5, 0.75)  # 24x16 -> 12x12
    set_ratio(backbone.dynopools['layer6'], 1.5, 0.5)  # 12x12 -> 18x6
    assert sizes(backbone(torch.rand(1, 3, 64, 64))) == [(24, 16), (12, 12),
                                                         (12, 12), (18, 6)]
    assert_parent_state_dict_loads(backbone,
                                   parent_of(backbone)(**SMALL_MOBILENET_D8))


def test_mobilenet_v2_default_strides_and_gradient():
    backbone = DynOPoolMobileNetV2(widen_factor=0.25)
    assert list(backbone.dynopool_names) == [
        'stem', 'layer2', 'layer3', 'layer4', 'layer6'
    ]
    # The depthwise conv of each replaced block lost its stride.
    assert backbone.layer2[0].conv[1].conv.stride == (1, 1)
    for layer in backbone.dynopools.values():
        set_ratio(layer, 0.55, 0.6)
    loss = sum(out.mean() for out in backbone(torch.rand(2, 3, 64, 64)))
    loss.backward()
    for step, layer in backbone.dynopools.items():
        assert layer.alpha.grad.abs().sum() > 0, step


# -- MixVisionTransformer (SegFormer) -------------------------------------
def test_mit_patch_embeds():
    backbone = DynOPoolMixVisionTransformer(**SMALL_MIT)
    backbone.eval()
    assert backbone.dynopool_names == {
        'stage1': 'layers.0.0.projection.dynopool',
        'stage2': 'layers.1.0.dynopool',
        'stage3': 'layers.2.0.dynopool',
        'stage4': 'layers.3.0.dynopool',
    }
    assert backbone.dynopools['stage1'].ratio == (0.25, 0.25)
    assert strided_layers(backbone.layers[0][0]) == []
    assert sizes(backbone(torch.rand(1, 3, 64, 64))) == [(16, 16), (8, 8),
                                                         (4, 4), (2, 2)]
    set_ratio(backbone.dynopools['stage1'], 0.2, 0.3)  # 13x19
    set_ratio(backbone.dynopools['stage3'], 0.8, 0.6)  # 7x10 -> 6x6
    outputs = backbone(torch.rand(2, 3, 64, 64))
    assert sizes(outputs) == [(13, 19), (7, 10), (6, 6), (3, 3)]
    assert_parent_state_dict_loads(backbone, parent_of(backbone)(**SMALL_MIT))


def test_mit_alpha_receives_gradient_and_init_weights_keeps_it():
    backbone = DynOPoolMixVisionTransformer(**SMALL_MIT)
    backbone.init_weights()
    assert backbone.dynopools['stage2'].ratio == (0.5, 0.5)
    for layer in backbone.dynopools.values():
        set_ratio(layer, *(r * 1.1 for r in layer.ratio))
    loss = sum(out.square().mean() for out in backbone(torch.rand(1, 3, 64,
                                                                  64)))
    loss.backward()
    for step, layer in backbone.dynopools.items():
        assert layer.alpha.grad.abs().sum() > 0, step


# -- surgery errors ---------------------------------------------------------
def test_surgery_refuses_what_it_cannot_replace():
    model = nn.Sequential(nn.Conv2d(3, 4, 2, stride=2), nn.ReLU())
    with pytest.raises(ValueError, match='changes the feature size'):
        apply_resize_step(model, ResizeStep(host='0'))
    model = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.Conv2d(4, 4, 3, 4, 1)))
    with pytest.raises(ValueError, match='disagree on the stride'):
        apply_resize_step(model, ResizeStep(host='0.1', scope='0'))
    model = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1)))
    with pytest.raises(TypeError, match='attach it to a layer inside'):
        apply_resize_step(model, ResizeStep(host='0'))
    model = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1))
    with pytest.raises(ValueError, match='position must be one of'):
        apply_resize_step(model, ResizeStep(host='0', position='inside'))


def test_surgery_anisotropic_stride():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=(2, 1), padding=1))
    assert apply_resize_step(model, ResizeStep(host='0')) == '0.dynopool'
    assert isinstance(model[0], _ConvNd) and model[0].stride == (1, 1)
    assert model[0].dynopool.ratio == (0.5, 1.0)
    assert model(torch.rand(1, 3, 8, 6)).shape[2:] == (4, 6)
