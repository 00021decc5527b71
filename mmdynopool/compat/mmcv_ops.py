"""Make ``mmcv.ops`` importable when only mmcv-lite is installed.

mmsegmentation 1.2.2 imports ``mmcv.ops`` at import time
(``mmseg/utils/mask_classification.py``), which fails with mmcv-lite because
the compiled extension ``mmcv._ext`` is missing. This module decides which
world we are in:

* no mmcv at all: an ``ImportError`` that names both ways to install it
  (full mmcv through openmim, or the ``lite`` extra);
* full mmcv (``mmcv._ext`` importable): nothing is changed;
* mmcv-lite: a small replacement module is installed as ``mmcv.ops``, and
  mmcv's warning about the compiled ``MultiScaleDeformableAttention`` it
  cannot import (printed at every import, harmless: the shim's stand-in
  names the fix when the op is used) is not shown. It
  provides pure-torch versions of the ops mmseg uses that are easy to write
  in torch (``point_sample``, ``sigmoid_focal_loss``) and, for ops that need
  compiled kernels (``PSAMask``, deformable convolutions, criss-cross
  attention, ...), stand-ins that raise a clear error *when called*, naming
  the op and the fix.
"""
import importlib
import importlib.metadata
import importlib.util
import logging
import sys
import types
import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor

FULL_MMCV = 'full-mmcv'
MMCV_LITE = 'mmcv-lite'

# Ops from compiled kernels that mmseg (and configs users copy) refer to.
COMPILED_ONLY_OPS = (
    'PSAMask', 'CrissCrossAttention', 'DeformConv', 'DeformConv2d',
    'DeformConv2dPack', 'ModulatedDeformConv2d', 'ModulatedDeformConv2dPack',
    'SyncBatchNorm', 'CARAFEPack', 'nms', 'batched_nms', 'RoIAlign',
    'roi_align', 'MultiScaleDeformableAttention')

_INSTALL_HINT = ('install full mmcv (compiled ops): pip install -U setuptools'
                 '"<81" && MMCV_WITH_OPS=1 pip install --no-build-isolation '
                 'mmcv==2.1.0 (about 10-16 min to build), or choose a model '
                 'that does not use this op')

NO_MMCV_MESSAGE = (
    'mmdynopool needs mmcv (>=2.0.0rc4, <2.2.0, as mmsegmentation 1.2), and '
    'no mmcv is installed. Either install full mmcv (compiled ops) built for '
    'your torch and CUDA through openmim: pip install -U openmim && mim '
    'install "mmcv>=2.0.0rc4,<2.2.0"; or, without compiled ops, mmcv-lite '
    'through the lite extra: pip install "mmdynopool[lite]" (from a '
    'checkout: pip install -e ".[lite]"). Never both: they share the mmcv/ '
    'folder.')

# Warnings that mmcv-lite prints at import and that are harmless here:
# mmseg never builds MultiScaleDeformableAttention, and the lite shim's
# stand-in raises with the fix if a config does.
LITE_HARMLESS_WARNINGS = (
    r'Fail to import ``MultiScaleDeformableAttention`` from ',
)

_state: dict = {'world': None}


def mmcv_installed() -> bool:
    """Whether any ``mmcv`` package (full or lite) can be imported."""
    try:
        return importlib.util.find_spec('mmcv') is not None
    except (ImportError, ValueError):
        return False


def installed_mmcv_distributions() -> dict:
    """``{distribution: version}`` of the installed mmcv distributions."""
    found = {}
    for name in ('mmcv', 'mmcv-lite', 'mmcv-full'):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def hide_lite_harmless_warnings() -> None:
    """Filter the warnings listed in ``LITE_HARMLESS_WARNINGS``."""
    for message in LITE_HARMLESS_WARNINGS:
        warnings.filterwarnings('ignore', message=message,
                                category=UserWarning)


def compiled_mmcv_available() -> bool:
    """Whether mmcv's compiled extension ``mmcv._ext`` can be found."""
    try:
        return importlib.util.find_spec('mmcv._ext') is not None
    except (ImportError, ValueError):
        return False


def denormalize_points(points: Tensor) -> Tensor:
    """Map point coordinates from ``[0, 1]`` to grid_sample's ``[-1, 1]``."""
    return points * 2.0 - 1.0


def point_sample(input: Tensor,
                 points: Tensor,
                 align_corners: bool = False,
                 **kwargs) -> Tensor:
    """Pure-torch ``mmcv.ops.point_sample``: bilinear features at points.

    Args:
        input (Tensor): Feature map of shape (N, C, H, W).
        points (Tensor): Coordinates in ``[0, 1]``, shape (N, P, 2) or
            (N, Hgrid, Wgrid, 2), ordered (x, y).
        align_corners (bool): As in ``F.grid_sample``.
        **kwargs: Passed to ``F.grid_sample`` (e.g. ``padding_mode``).

    Returns:
        Tensor: (N, C, P) or (N, C, Hgrid, Wgrid).
    """
    add_dim = points.dim() == 3
    if add_dim:
        points = points.unsqueeze(2)
    output = F.grid_sample(
        input,
        denormalize_points(points).to(input.dtype),
        align_corners=align_corners,
        **kwargs)
    return output.squeeze(3) if add_dim else output


def sigmoid_focal_loss(input: Tensor,
                       target: Tensor,
                       gamma: float = 2.0,
                       alpha: float = 0.25,
                       weight: Optional[Tensor] = None,
                       reduction: str = 'mean') -> Tensor:
    """Pure-torch ``mmcv.ops.sigmoid_focal_loss`` with the kernel's semantics.

    ``target`` holds class indices (a value equal to the number of classes
    means background); the optional per-class ``weight`` is indexed by the
    target class, and ``'mean'`` divides by the number of samples, exactly as
    mmcv's compiled kernel does.
    """
    if reduction not in ('none', 'mean', 'sum'):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', "
                         f'got {reduction!r}')
    num_classes = input.size(1)
    one_hot = F.one_hot(target.long(), num_classes + 1)[:, :num_classes]
    one_hot = one_hot.to(input.dtype)
    prob = input.sigmoid()
    # log(p) and log(1-p) from logsigmoid for numerical stability.
    term_pos = (1 - prob).pow(gamma) * F.logsigmoid(input)
    term_neg = prob.pow(gamma) * F.logsigmoid(-input)
    loss = -alpha * one_hot * term_pos - (1 - alpha) * (1 - one_hot) * term_neg
    if weight is not None:
        padded = torch.cat([weight, weight.new_zeros(1)])
        loss = loss * padded[target.long()].unsqueeze(1)
    if reduction == 'mean':
        return loss.sum() / input.size(0)
    if reduction == 'sum':
        return loss.sum()
    return loss


class MissingCompiledOp:
    """Stand-in for an op that needs mmcv's compiled kernels.

    Importing it works (so mmseg's modules import); constructing or calling it
    raises an ``ImportError`` that names the op and how to get it.
    """

    op_name = 'op'

    def __init__(self, *args, **kwargs):
        raise ImportError(
            f'mmcv.ops.{self.op_name} needs mmcv compiled ops, but only '
            f'mmcv-lite is installed. To use it, {_INSTALL_HINT}.')


def make_missing_op(name: str) -> type:
    """A ``MissingCompiledOp`` subclass named after ``name``."""
    return type(name, (MissingCompiledOp, ), {'op_name': name})


def build_lite_ops_module() -> types.ModuleType:
    """The module installed as ``mmcv.ops`` under mmcv-lite."""
    module = types.ModuleType(
        'mmcv.ops', 'mmdynopool compatibility layer for mmcv-lite: pure-torch '
        'point_sample/sigmoid_focal_loss; compiled-only ops raise on use.')
    module.point_sample = point_sample
    module.sigmoid_focal_loss = sigmoid_focal_loss
    for name in COMPILED_ONLY_OPS:
        setattr(module, name, make_missing_op(name))

    def __getattr__(name: str):
        # Any other mmcv op: importable, fails with a clear message on use.
        if name.startswith('__'):
            raise AttributeError(name)
        op = make_missing_op(name)
        setattr(module, name, op)
        return op

    module.__getattr__ = __getattr__
    module.MMDYNOPOOL_LITE_SHIM = True
    return module


def install_mmcv_ops_compat(force_world: Optional[str] = None) -> str:
    """Make ``import mmcv.ops`` work; return the world we are in.

    Args:
        force_world (str, optional): ``'full-mmcv'`` or ``'mmcv-lite'`` to
            skip detection (tests use it to simulate either world).

    Returns:
        str: ``'full-mmcv'`` or ``'mmcv-lite'``.

    Raises:
        ImportError: No mmcv is installed; the message names both ways to
            install one.
    """
    if force_world not in (None, FULL_MMCV, MMCV_LITE):
        raise ValueError(f'force_world must be {FULL_MMCV!r} or '
                         f'{MMCV_LITE!r}, got {force_world!r}')
    if not mmcv_installed():
        raise ImportError(NO_MMCV_MESSAGE)
    world = force_world or (
        FULL_MMCV if compiled_mmcv_available() else MMCV_LITE)
    current = sys.modules.get('mmcv.ops')
    if world == MMCV_LITE:
        hide_lite_harmless_warnings()
    if world == MMCV_LITE and not getattr(current, 'MMDYNOPOOL_LITE_SHIM',
                                          False):
        mmcv = importlib.import_module('mmcv')
        shim = build_lite_ops_module()
        sys.modules['mmcv.ops'] = shim
        mmcv.ops = shim
    if _state['world'] != world:
        version = getattr(importlib.import_module('mmcv'), '__version__',
                          'unknown version')
        detail = (' (compiled ops; nothing patched)' if world == FULL_MMCV
                  else ' (no compiled ops: pure-torch mmcv.ops shim; '
                  'compiled-only ops raise on use)')
        print_log(f'mmdynopool: running with {world} {version}{detail}',
                  logger='current', level=logging.INFO)
        dists = installed_mmcv_distributions()
        if 'mmcv-lite' in dists and len(dists) > 1:
            print_log(
                f'mmdynopool: both {sorted(dists)} are installed; they write '
                'the same mmcv/ folder, so uninstalling one breaks the other. '
                'Keep one: pip uninstall mmcv-lite (full mmcv) or reinstall '
                'it alone.', logger='current', level=logging.WARNING)
        _state['world'] = world
    return world


def mmcv_world() -> Optional[str]:
    """The world detected by the last ``install_mmcv_ops_compat`` call."""
    return _state['world']
