"""Freeze the learned resolutions of a trained model.

After training, every :class:`~mmdynopool.ops.DynOPool` can be replaced by
its deploy form :class:`~mmdynopool.ops.StaticDynOPool`: the learned ratio
becomes a constant, the ``alpha`` parameters and the straight-through code
go away, and the model computes exactly the same outputs (same mIoU / PSNR)
with plain ``F.interpolate`` + ``max_pool2d`` that every exporter and
compiler understands.

* :func:`freeze_dynopool` does it in place (or on a copy);
* :class:`FreezeDynOPoolHook` does it in ``tools/test.py`` right after the
  checkpoint is loaded (``--freeze``, or ``custom_hooks`` in a config);
* :func:`add_freeze_hook` appends that hook to a config.
"""
import copy
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from mmdynopool.ops import DynOPool, StaticDynOPool


def set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    """Replace ``root.<name>`` by ``module`` (same name, same place; works
    inside ``nn.Sequential`` / ``nn.ModuleList`` too)."""
    parent_name, _, child = name.rpartition('.')
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def freeze_dynopool(model: nn.Module,
                    inplace: bool = True,
                    verbose: bool = False) -> nn.Module:
    """Replace every :class:`DynOPool` of ``model`` by its
    :class:`StaticDynOPool` (the learned ratio, fixed).

    The model's outputs do not change, for any input size. Its state dict
    keeps the ``*.alpha`` entries (as buffers of the static layers), so a
    checkpoint saved after freezing loads into the learnable model, and a
    learnable model's checkpoint into the frozen one (which takes its
    ratios). Model wrappers (``DataParallel``, mmseg's TTA
    model) are handled like any parent module.

    Args:
        model (nn.Module): The trained model.
        inplace (bool): Modify ``model`` itself (default) or a deep copy.
        verbose (bool): Log every frozen layer with its ratio.

    Returns:
        nn.Module: The frozen model (``model`` itself when ``inplace``).
    """
    if not inplace:
        model = copy.deepcopy(model)
    if isinstance(model, DynOPool):
        return model.to_static()
    frozen = OrderedDict()
    for name, module in list(model.named_modules()):
        if isinstance(module, DynOPool):
            static = module.to_static()
            static.train(module.training)
            set_submodule(model, name, static)
            frozen[name] = static.ratio
    if verbose:
        print_log(frozen_summary(frozen), logger='current')
    return model


def frozen_summary(frozen: Dict[str, Tuple[float, float]]) -> str:
    if not frozen:
        return 'freeze_dynopool: the model has no DynOPool layer'
    parts = [f'{name}: r=({r_h:.4f}, {r_w:.4f})'
             for name, (r_h, r_w) in frozen.items()]
    return (f'freeze_dynopool: {len(frozen)} DynOPool layer(s) frozen to '
            'their learned ratios: ' + ', '.join(parts))


def static_ratios(model: nn.Module) -> Dict[str, Tuple[float, float]]:
    """``{name: (r_h, r_w)}`` of every (static or learnable) DynOPool."""
    return OrderedDict((name, tuple(module.ratio))
                       for name, module in model.named_modules()
                       if isinstance(module, (DynOPool, StaticDynOPool)))


def count_dynopool(model: nn.Module) -> int:
    return sum(isinstance(m, DynOPool) for m in model.modules())


@HOOKS.register_module()
class FreezeDynOPoolHook(Hook):
    """Freeze every DynOPool of the model (see :func:`freeze_dynopool`).

    * Testing: ``Runner.test()`` and ``Runner.val()`` load ``load_from``
      after ``before_run``, so the hook acts in ``before_test`` /
      ``before_val``, where the learned ``alpha`` of the checkpoint is in
      place. Validation during ``runner.train()`` keeps the learnable
      layers (unless they were frozen by ``freeze_at_iter``).
    * Training (``freeze_at_iter=N``): after ``N`` training iterations the
      resolutions are fixed for the rest of the run (a warm-up in which the
      ratios settle, then training at fixed feature sizes: no more
      ``alpha`` updates, and a compiled model stops recompiling for new
      sizes). The ``alpha`` parameters stay in the optimiser without
      gradients; the budget loss becomes a constant.

    Use it with ``python tools/test.py CONFIG CKPT --freeze``, or in a config:
    ``custom_hooks = [dict(type='FreezeDynOPoolHook')]``.

    Args:
        freeze_at_iter (int, optional): Also freeze during training, after
            this many iterations. Default: None (testing only).
        verbose (bool): Log the frozen ratios. Default: True.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 freeze_at_iter: Optional[int] = None,
                 verbose: bool = True) -> None:
        if freeze_at_iter is not None and (
                isinstance(freeze_at_iter, bool)
                or not isinstance(freeze_at_iter, int) or freeze_at_iter < 0):
            raise ValueError('freeze_at_iter must be None or an integer >= 0'
                             f', got {freeze_at_iter!r}')
        self.freeze_at_iter = freeze_at_iter
        self.verbose = verbose

    @staticmethod
    def training(runner) -> bool:
        # Runner.train() builds its train loop; test()/val() leave the
        # config (or None) in place.
        from mmengine.runner import BaseLoop
        return isinstance(getattr(runner, '_train_loop', None), BaseLoop)

    def _freeze(self, runner, when: str = '') -> None:
        model = runner.model
        model = model.module if hasattr(model, 'module') else model
        if count_dynopool(model) == 0:
            return
        ratios = static_ratios(model)
        freeze_dynopool(model, inplace=True)
        if self.verbose:
            runner.logger.info(frozen_summary(ratios) + when)

    def before_train(self, runner) -> None:
        if self.freeze_at_iter is not None and \
                runner.iter >= self.freeze_at_iter:  # resumed past it
            self._freeze(runner, f' (resumed at iteration {runner.iter})')

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if self.freeze_at_iter is not None and \
                runner.iter + 1 == self.freeze_at_iter:
            self._freeze(runner,
                         f' after {self.freeze_at_iter} training iterations')

    def before_test(self, runner) -> None:
        if not self.training(runner):
            self._freeze(runner)

    def before_val(self, runner) -> None:
        if not self.training(runner):
            self._freeze(runner)


def add_freeze_hook(cfg) -> None:
    """Append :class:`FreezeDynOPoolHook` to ``cfg.custom_hooks`` (what
    ``tools/test.py --freeze`` does); a no-op if it is already there."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(
            isinstance(h, dict) and h.get('type') in (
                'FreezeDynOPoolHook', FreezeDynOPoolHook) for h in hooks):
        hooks.append(dict(type='FreezeDynOPoolHook'))
    cfg.custom_hooks = hooks
