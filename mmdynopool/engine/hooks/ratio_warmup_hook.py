"""Let the weights train before DynOPool's ratios start to move."""
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from mmdynopool.ops import dynopool_layers
from .health_hook import DynOPoolHealthHook
from .ratio_hook import unwrap


@HOOKS.register_module()
class DynOPoolRatioWarmupHook(Hook):
    """Hold every DynOPool's ``alpha`` for the first ``begin_iter`` training
    iterations, so that the ratios start learning once the weights are
    trained a little.

    Why: at initialisation the task gradient on ``alpha`` is 5-20x smaller
    and its batch-to-batch signal-to-noise lower than after the weights have
    trained (``alpha_grad_snr.py``; ``configs/demo/STUDY.md``), so early
    ratio steps follow noise, and a ratio that drifts early can pull the
    weights, and with them its own gradient, further the same way.

    How ``alpha`` is held:

    * ``warm_moments=False``: its gradient is dropped before each optimiser
      step (set to ``None``), so optimisers such as Adam neither move
      ``alpha`` nor start its moment estimates. Adam's first steps after the
      warm-up then average only a few gradients: each is about ``lr`` long
      in the sign of the last few batches, whatever their signal-to-noise.
    * ``warm_moments=True``: the optimiser steps with ``alpha``'s gradient
      and ``alpha`` is put back after each step, so its moment estimates
      (Adam's running mean and variance, SGD's momentum) are warmed on the
      warm-up's gradients while ``alpha`` stays. The first free steps are
      then as long as the averaged gradient's signal-to-noise makes them.

    Args:
        begin_iter (int): Training iterations at fixed ratios. Default: 100.
        warm_moments (bool): Warm the optimiser's moments of ``alpha`` during
            the warm-up (see above). Default: False.
    """

    priority = 'NORMAL'

    def __init__(self, begin_iter: int = 100,
                 warm_moments: bool = False) -> None:
        if isinstance(begin_iter, bool) or not isinstance(
                begin_iter, int) or begin_iter < 0:
            raise ValueError(f'begin_iter must be an integer >= 0, got '
                             f'{begin_iter!r}')
        if not isinstance(warm_moments, bool):
            raise TypeError(f'warm_moments must be True or False, got '
                            f'{warm_moments!r}')
        self.begin_iter = begin_iter
        self.warm_moments = warm_moments
        self._handles: list = []
        self._runner = None
        self._held: list = []

    def before_train(self, runner) -> None:
        self._runner = runner
        for optimizer in DynOPoolHealthHook._optimizers(runner):
            self._handles.append(
                optimizer.register_step_pre_hook(self._before_step))
            if self.warm_moments:
                self._handles.append(
                    optimizer.register_step_post_hook(self._after_step))

    def _warming_up(self) -> bool:
        return self._runner is not None and \
            self._runner.iter < self.begin_iter

    def _alphas(self):
        return [
            module.alpha
            for _, module in dynopool_layers(unwrap(self._runner.model))
        ]

    def _before_step(self, optimizer, args, kwargs) -> None:
        if not self._warming_up():
            return
        if self.warm_moments:
            self._held = [(a, a.detach().clone()) for a in self._alphas()]
        else:
            for alpha in self._alphas():
                alpha.grad = None

    def _after_step(self, optimizer, args, kwargs) -> None:
        with torch.no_grad():
            for alpha, value in self._held:
                alpha.copy_(value)
        self._held = []

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
