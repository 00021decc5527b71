"""Compatibility layers applied on ``import mmdynopool``."""
from .checkpoint import allow_mmengine_checkpoints
from .mim import mim_dir, register_mim_package
from .mmcv_ops import (FULL_MMCV, MMCV_LITE, NO_MMCV_MESSAGE,
                       compiled_mmcv_available, install_mmcv_ops_compat,
                       mmcv_world)

__all__ = [
    'allow_mmengine_checkpoints', 'install_mmcv_ops_compat',
    'compiled_mmcv_available', 'mmcv_world', 'FULL_MMCV', 'MMCV_LITE',
    'NO_MMCV_MESSAGE', 'register_mim_package', 'mim_dir'
]
