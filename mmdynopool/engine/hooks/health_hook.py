"""Catch degenerate DynOPool learning early, with the layer's name.

Learned resolutions fail in a few typical ways, each of which otherwise
shows up late and far from its cause (a shape error in a decode head, a
``nan`` in a metric, a ``ValueError`` about ``alpha`` at the next forward):

* a ratio runs into a bound of ``ratio_range`` and stays there (the budget
  loss is too weak: the size grows to ``r_max``; too strong: it shrinks to
  ``r_min``);
* a stage collapses to ``min_size`` (or to 1): its size no longer depends
  on ``alpha``, which then receives no gradient and cannot recover;
* a loss or an ``alpha`` gradient becomes ``nan`` / ``inf`` (``alpha``'s
  learning rate or the budget loss weight too large).

:class:`DynOPoolHealthHook` warns about the first two (naming the layer and
the value) and stops training on the third with a ``RuntimeError`` that
names the loss or the layer, *before* the optimiser step that would write
``nan`` into the weights, so the last checkpoint stays usable.
"""
import math
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch import Tensor

from mmdynopool.ops import DynOPool, dynopool_layers
from mmdynopool.ops.functional import alpha_to_sizes
from .ratio_hook import unwrap

AXES = ('h', 'w')

ADVICE = ('lower the learning rate of alpha (optim_wrapper.paramwise_cfg.'
          'alpha_lr_mult), the weight of the budget loss (GMACsLoss '
          'loss_weight) or the base learning rate, or clip gradients '
          '(optim_wrapper.clip_grad=dict(max_norm=...)), then resume from '
          'the last checkpoint')


class DynOPoolDivergenceError(RuntimeError):
    """Training stopped: a loss or a DynOPool ``alpha`` (or its gradient) is
    not finite."""


def is_finite_number(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def loss_items(outputs: Any) -> List[Tuple[str, float]]:
    """``(name, value)`` of every ``*loss*`` entry of a loss dict (tensors,
    lists of tensors or numbers), as host floats."""
    if not isinstance(outputs, dict):
        return []
    items = []
    for name, value in outputs.items():
        if 'loss' not in name:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for index, item in enumerate(values):
            label = name if len(values) == 1 else f'{name}[{index}]'
            if isinstance(item, Tensor):
                if item.numel() == 0:
                    continue
                item = item.detach().float()
                # one number: its worst element (nan wins over inf)
                item = float(item.sum()) if not torch.isfinite(
                    item).all() else float(item.mean())
            if isinstance(item, (int, float)):
                items.append((label, float(item)))
    return items


@HOOKS.register_module()
class DynOPoolHealthHook(Hook):
    """Watch every DynOPool while training; warn on degenerate ratios and
    stop on divergence with a clear message.

    Checks (``warn`` = ``runner.logger.warning`` once when the condition
    appears, again only after it cleared; every event is also kept in
    :attr:`events` as ``(iteration, kind, layer or loss, value)``):

    * ``'bound'`` (warn): ``r_h`` or ``r_w`` at a bound of the layer's
      ``ratio_range`` for ``patience`` consecutive iterations;
    * ``'collapse'`` (warn): an output side held at ``min_size`` (the rounded
      ``r * H`` is below it) or equal to 1: ``alpha`` gets no gradient on
      that axis;
    * ``'loss'`` (stop): a ``*loss*`` of the training forward is ``nan`` or
      ``inf``; checked by a forward hook on the model, before ``backward``;
    * ``'alpha_grad'`` (stop): an ``alpha`` gradient is not finite; checked
      by a step pre-hook on the optimiser, before the step (under AMP the
      loss scaler skips such steps itself, and the hook never sees them);
    * ``'alpha'`` (stop): an ``alpha`` is not finite or not positive (after
      each step, and before training, e.g. after resuming).

    Stopping raises :class:`DynOPoolDivergenceError` (a ``RuntimeError``)
    naming the loss / layer, the value and what to change. The hook runs
    before the checkpoint hook, so no diverged state is saved.

    Args:
        interval (int): Check the ratios every ``interval`` iterations.
            Default: 1.
        patience (int): Consecutive checks at a bound before warning.
            Default: 10.
        bound_rtol (float): Relative distance to a bound that counts as at
            the bound. Default: 1e-3.
        stop_on_nonfinite (bool): Raise on ``nan`` / ``inf`` (otherwise only
            warn). Default: True.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 interval: int = 1,
                 patience: int = 10,
                 bound_rtol: float = 1e-3,
                 stop_on_nonfinite: bool = True) -> None:
        for name, value in (('interval', interval), ('patience', patience)):
            if isinstance(value, bool) or not isinstance(value,
                                                         int) or value < 1:
                raise ValueError(f'{name} must be an integer >= 1, got '
                                 f'{value!r}')
        if not 0 <= bound_rtol < 1:
            raise ValueError(f'bound_rtol must lie in [0, 1), got '
                             f'{bound_rtol!r}')
        self.interval = interval
        self.patience = patience
        self.bound_rtol = float(bound_rtol)
        self.stop_on_nonfinite = stop_on_nonfinite
        self.events: List[Tuple[int, str, str, Any]] = []
        self._layers: 'OrderedDict[str, DynOPool]' = OrderedDict()
        self._handles: list = []
        self._active: Dict[Tuple[str, str], Any] = {}
        self._active_now: set = set()
        self._at_bound: Dict[Tuple[str, str], int] = {}
        self._sizes: Dict[str, dict] = {}
        self._runner = None

    # -- setup -------------------------------------------------------------
    def before_train(self, runner) -> None:
        self._runner = runner
        model = unwrap(runner.model)
        self._layers = OrderedDict(dynopool_layers(model))
        self._remove_handles()
        self._handles.append(model.register_forward_hook(self._check_losses))
        for name, layer in self._layers.items():
            self._handles.append(
                layer.register_forward_hook(self._size_hook(name)))
        for optimizer in self._optimizers(runner):
            self._handles.append(
                optimizer.register_step_pre_hook(self._check_grads))
        self._check_alphas(runner.iter)

    def after_train(self, runner) -> None:
        self._remove_handles()

    def _remove_handles(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @staticmethod
    def _optimizers(runner) -> list:
        wrapper = getattr(runner, 'optim_wrapper', None)
        if wrapper is None or isinstance(wrapper, dict):
            return []
        if hasattr(wrapper, 'optim_wrappers'):  # OptimWrapperDict
            wrappers = list(wrapper.optim_wrappers.values())
        else:
            wrappers = [wrapper]
        return [w.optimizer for w in wrappers if hasattr(w, 'optimizer')]

    @property
    def _iter(self) -> int:
        return self._runner.iter if self._runner is not None else 0

    # -- reporting ---------------------------------------------------------
    def _warn(self, key: Tuple[str, str], kind: str, subject: str, value,
              message: str) -> None:
        """Warn once per episode of a condition."""
        self._active_now.add(key)
        if key in self._active:
            return
        self._active[key] = value
        self.events.append((self._iter, kind, subject, value))
        if self._runner is not None:
            self._runner.logger.warning(f'DynOPoolHealthHook: {message}')

    def _stop(self, kind: str, subject: str, value, message: str) -> None:
        self.events.append((self._iter, kind, subject, value))
        full = (f'DynOPoolHealthHook: training stopped at iteration '
                f'{self._iter + 1}: {message}. {self._ratio_summary()}')
        if not self.stop_on_nonfinite:
            if self._runner is not None:
                self._runner.logger.warning(full)
            return
        raise DynOPoolDivergenceError(full)

    def _ratio_summary(self) -> str:
        if not self._layers:
            return 'The model has no DynOPool layer.'
        parts = []
        for name, layer in self._layers.items():
            alpha = layer.alpha.detach().double().tolist()
            ratios = ', '.join(
                f'{1 / a:.4g}' if is_finite_number(a) and a > 0 else
                f'alpha={a}' for a in alpha)
            size = self._sizes.get(name)
            where = f' -> {size["out"][0]}x{size["out"][1]}' if size else ''
            parts.append(f'{name}: r=({ratios}){where}')
        return 'DynOPool layers: ' + '; '.join(parts)

    # -- checks ------------------------------------------------------------
    def _check_losses(self, module, args, output) -> None:
        if not module.training:
            return
        for name, value in loss_items(output):
            if not math.isfinite(value):
                hint = ADVICE
                if 'gmacs' in name:
                    hint = ('lower the weight of the budget loss (GMACsLoss '
                            'loss_weight) or set a target (target_ratio), '
                            'or lower alpha\'s learning rate; then resume '
                            'from the last checkpoint')
                self._stop(
                    'loss', name, value,
                    f'the loss {name!r} is {value} (before backward; the '
                    f'weights are still finite). To fix: {hint}')

    def _check_grads(self, optimizer, args, kwargs) -> None:
        for name, layer in self._layers.items():
            grad = layer.alpha.grad
            if grad is None:
                continue
            values = grad.detach().double().tolist()
            for axis, value in zip(AXES, values):
                if not math.isfinite(value):
                    self._stop(
                        'alpha_grad', name, value,
                        f'the gradient of {name}.alpha ({axis} axis, 1/r_'
                        f'{axis}) is {value} (before the optimiser step; '
                        f'alpha is still finite). To fix: {ADVICE}')

    def _check_alphas(self, iteration: int) -> None:
        for name, layer in self._layers.items():
            values = layer.alpha.detach().double().tolist()
            for axis, value in zip(AXES, values):
                if not is_finite_number(value) or value <= 0:
                    self._stop(
                        'alpha', name, value,
                        f'{name}.alpha ({axis} axis, 1/r_{axis}) is {value}'
                        f'. To fix: {ADVICE}')

    def _size_hook(self, name: str):

        def hook(layer: DynOPool, args, output) -> None:
            if not layer.training or not isinstance(output, Tensor):
                return
            x = args[0]
            in_h, in_w = int(x.shape[2]), int(x.shape[3])
            ratio = layer.ratio
            _, _, pinned_h, pinned_w = alpha_to_sizes(
                [1.0 / r for r in ratio], in_h, in_w, layer.min_size)
            self._sizes[name] = dict(
                input=(in_h, in_w),
                out=(int(output.shape[2]), int(output.shape[3])),
                pinned=(pinned_h, pinned_w),
                ratio=ratio)

        return hook

    def _check_collapse(self) -> None:
        for name, size in self._sizes.items():
            layer = self._layers[name]
            for i, axis in enumerate(AXES):
                out, pinned = size['out'][i], size['pinned'][i]
                if not (pinned or out == 1):
                    continue
                self._warn(
                    (name, f'collapse_{axis}'), 'collapse', name, out,
                    f'{name} collapsed along {"height" if i == 0 else "width"}'
                    f': output {axis} = {out} (min_size={layer.min_size}) '
                    f'from input {size["input"][i]} at r_{axis}='
                    f'{size["ratio"][i]:.4g}. Held at its minimum, the size '
                    f'no longer depends on alpha, so this axis gets no '
                    'gradient and cannot grow again: lower the budget loss '
                    'weight, raise its target, or raise ratio_range[0]')

    def _check_bounds(self) -> None:
        tol = self.bound_rtol
        for name, layer in self._layers.items():
            r_min, r_max = layer.ratio_range
            alpha = layer.alpha.detach().double().tolist()
            for axis, a in zip(AXES, alpha):
                key = (name, f'bound_{axis}')
                if not is_finite_number(a) or a <= 0:
                    continue
                r = 1.0 / a
                side = 'upper' if r >= r_max * (1 - tol) else (
                    'lower' if r <= r_min * (1 + tol) else None)
                if side is None:
                    self._at_bound.pop(key, None)
                    continue
                self._at_bound[key] = self._at_bound.get(key, 0) + 1
                if self._at_bound[key] < self.patience:
                    self._active_now.add(key)  # keep an episode alive
                    continue
                bound = r_max if side == 'upper' else r_min
                hint = ('the budget loss does not hold this stage back: '
                        'raise GMACsLoss loss_weight or lower its target, or '
                        'raise ratio_range[1]' if side == 'upper' else
                        'the budget loss pushes this stage to its smallest '
                        'size: lower GMACsLoss loss_weight or raise its '
                        'target, or lower ratio_range[0]')
                self._warn(
                    key, 'bound', name, r,
                    f'{name} r_{axis}={min(max(r, r_min), r_max):.4g} is '
                    f'pinned at the {side} bound {bound:.4g} of ratio_range '
                    f'{layer.ratio_range} for {self._at_bound[key]} '
                    f'iterations (alpha_{axis}={a:.4g}): {hint}')

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        self._runner = runner
        for name, value in loss_items(outputs):
            if not math.isfinite(value):  # a model without forward hooks
                self._stop('loss', name, value,
                           f'the loss {name!r} is {value}. To fix: {ADVICE}')
        self._check_alphas(runner.iter)
        if not self.every_n_train_iters(runner, self.interval):
            return
        self._active_now = set()
        self._check_bounds()
        self._check_collapse()
        # Conditions that cleared may warn again when they come back.
        for key in list(self._active):
            if key not in self._active_now:
                del self._active[key]
