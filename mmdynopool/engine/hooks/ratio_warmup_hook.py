"""Let the weights train before DynOPool's ratios start to move."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from mmdynopool.ops import dynopool_layers
from .health_hook import DynOPoolHealthHook
from .ratio_hook import unwrap


@HOOKS.register_module()
class DynOPoolRatioWarmupHook(Hook):
    """Hold every DynOPool's ``alpha`` for the first ``begin_iter`` training
    iterations: its gradient is dropped before each optimiser step (set to
    ``None``, so optimisers such as Adam neither move ``alpha`` nor start its
    moment estimates), and the ratios start learning once the weights are
    trained a little.

    Why: at initialisation the task gradient on ``alpha`` is 5-20x smaller
    and its batch-to-batch signal-to-noise lower than after the weights have
    trained (``alpha_grad_snr.py``; ``configs/demo/STUDY.md``), so early
    ratio steps follow noise, and a ratio that drifts early can pull the
    weights, and with them its own gradient, further the same way.

    Args:
        begin_iter (int): Training iterations at fixed ratios. Default: 100.
    """

    priority = 'NORMAL'

    def __init__(self, begin_iter: int = 100) -> None:
        if isinstance(begin_iter, bool) or not isinstance(
                begin_iter, int) or begin_iter < 0:
            raise ValueError(f'begin_iter must be an integer >= 0, got '
                             f'{begin_iter!r}')
        self.begin_iter = begin_iter
        self._handles: list = []
        self._runner = None

    def before_train(self, runner) -> None:
        self._runner = runner
        for optimizer in DynOPoolHealthHook._optimizers(runner):
            self._handles.append(
                optimizer.register_step_pre_hook(self._drop_alpha_grads))

    def _drop_alpha_grads(self, optimizer, args, kwargs) -> None:
        if self._runner is None or self._runner.iter >= self.begin_iter:
            return
        for _, module in dynopool_layers(unwrap(self._runner.model)):
            module.alpha.grad = None

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
