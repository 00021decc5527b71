"""Compatibility layers applied on ``import mmdynopool``."""
from .checkpoint import allow_mmengine_checkpoints
from .mmcv_ops import (FULL_MMCV, MMCV_LITE, compiled_mmcv_available,
                       install_mmcv_ops_compat, mmcv_world)

__all__ = [
    'allow_mmengine_checkpoints', 'install_mmcv_ops_compat',
    'compiled_mmcv_available', 'mmcv_world', 'FULL_MMCV', 'MMCV_LITE'
]
