"""``mmdynopool::`` config paths, the way ``mmseg::`` works.

mmengine resolves ``_base_ = 'pkg::dir/file.py'`` to
``<installed pkg>/.mim/configs/dir/file.py``, but only for the OpenMMLab
packages listed in ``mmengine.config.utils.MODULE2PACKAGE``, and it finds the
installed package through ``pkg_resources``' distribution location, which
for a PEP 660 editable install is ``site-packages`` (where no ``mmdynopool/``
folder is). :func:`register_mim_package` (called on ``import mmdynopool``)
adds ``mmdynopool`` to that table and answers mmengine's path lookup for
``mmdynopool`` with the folder this module was imported from: the checkout
(``.mim`` holds symlinks) after ``pip install -e``, ``site-packages`` (``.mim``
holds copies) after a wheel install.

The configs of a ``mmdynopool::`` base get the scope ``mmdynopool``;
:mod:`mmdynopool.registry` provides that scope's registries (children of
mmengine's roots, where every mmdynopool module is registered).
"""
import os.path as osp
import warnings
from typing import Callable

MIM_PACKAGE = 'mmdynopool'
PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def mim_dir() -> str:
    """``mmdynopool/.mim`` of the imported package."""
    return osp.join(PACKAGE_DIR, '.mim')


def _patched_get_installed_path(original: Callable[[str], str]) -> Callable:

    def get_installed_path(package: str) -> str:
        if package == MIM_PACKAGE:
            return PACKAGE_DIR
        return original(package)

    get_installed_path.mmdynopool_patched = True  # type: ignore[attr-defined]
    get_installed_path.__wrapped__ = original  # type: ignore[attr-defined]
    return get_installed_path


def register_mim_package() -> None:
    """Let mmengine resolve ``mmdynopool::`` config paths (idempotent)."""
    from mmengine.config import config as config_module
    from mmengine.config import utils as config_utils

    config_utils.MODULE2PACKAGE.setdefault(MIM_PACKAGE, MIM_PACKAGE)
    original = config_module.get_installed_path
    if not getattr(original, 'mmdynopool_patched', False):
        config_module.get_installed_path = _patched_get_installed_path(
            original)
    # mmengine imports pkg_resources to resolve ``pkg::`` paths; setuptools
    # < 81 (pinned for that reason) warns about its own future at each
    # config load. Nothing for a user to act on.
    warnings.filterwarnings(
        'ignore', message='pkg_resources is deprecated as an API',
        category=UserWarning)
