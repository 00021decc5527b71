"""Deployment: freeze learned resolutions, export to ONNX.

``onnx`` / ``onnxruntime`` / ``onnxscript`` are imported lazily (only by the
export functions), so importing this package needs none of them.
"""
from .export import (DeployModel, build_model, check_onnx, default_shape,
                     export_onnx, remove_pretrained, second_shape,
                     static_gmacs)
from .freeze import (FreezeDynOPoolHook, add_freeze_hook, freeze_dynopool,
                     static_ratios)

__all__ = [
    'freeze_dynopool', 'FreezeDynOPoolHook', 'add_freeze_hook',
    'static_ratios', 'DeployModel', 'build_model', 'export_onnx',
    'check_onnx', 'static_gmacs', 'default_shape', 'second_shape',
    'remove_pretrained'
]
