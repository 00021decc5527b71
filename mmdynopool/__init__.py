"""mmdynopool: DynOPool (CVPR 2022) for OpenMMLab.

Importing the package applies the compatibility layers first (mmseg must be
importable under mmcv-lite; mmengine checkpoints must load under torch>=2.6)
and registers every module in the mm registries.
"""
from .compat import allow_mmengine_checkpoints, install_mmcv_ops_compat

install_mmcv_ops_compat()
allow_mmengine_checkpoints()

from .ops import DynOPool, StaticDynOPool  # noqa: E402
from . import models  # noqa: E402,F401
from . import datasets, evaluation  # noqa: E402,F401
from . import engine  # noqa: E402,F401
from . import deploy  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['DynOPool', 'StaticDynOPool', '__version__']
