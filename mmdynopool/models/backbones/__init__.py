from .base import DynOPoolBackboneMixin
from .convert import ConversionError, convert_backbone
from .dynopool_backbone import build_dynopool_backbone
from .mit import DynOPoolMixVisionTransformer
from .mobilenet_v2 import DynOPoolMobileNetV2
from .resnet import DynOPoolResNet, DynOPoolResNetV1c, DynOPoolResNetV1d
from .surgery import (ResizeStep, apply_resize_step, apply_resize_steps,
                      attach_dynopool, remove_stride)

__all__ = [
    'DynOPoolBackboneMixin', 'DynOPoolResNet', 'DynOPoolResNetV1c',
    'DynOPoolResNetV1d', 'DynOPoolMobileNetV2',
    'DynOPoolMixVisionTransformer', 'ResizeStep', 'apply_resize_step',
    'apply_resize_steps', 'attach_dynopool', 'remove_stride',
    'convert_backbone', 'ConversionError', 'build_dynopool_backbone'
]
from .toy_net import ToyNet  # noqa: E402,F401  (CPU demo backbone)
