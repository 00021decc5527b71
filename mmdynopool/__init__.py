"""mmdynopool: DynOPool (CVPR 2022) for OpenMMLab.

Importing the package applies the compatibility layers first (mmseg must be
importable under mmcv-lite, and without any mmcv the error says how to get
one; mmengine checkpoints must load under torch>=2.6; ``mmdynopool::``
config paths resolve like ``mmseg::``) and registers every module in the mm
registries.
"""
from .compat import (allow_mmengine_checkpoints, install_mmcv_ops_compat,
                     register_mim_package)

install_mmcv_ops_compat()
allow_mmengine_checkpoints()
register_mim_package()

from .ops import DynOPool, StaticDynOPool  # noqa: E402
from . import models  # noqa: E402,F401
from . import datasets, evaluation  # noqa: E402,F401
from . import engine  # noqa: E402,F401
from . import deploy  # noqa: E402,F401
from . import registry  # noqa: E402,F401  (the mmdynopool scope)
from .version import __version__  # noqa: E402

__all__ = ['DynOPool', 'StaticDynOPool', '__version__']
