"""The paper's compute-budget loss, with an optional GMACs target."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from .macs_recorder import MACsRecorder


def check_positive(value, name: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not value > 0 or value != value or value == float('inf'):
        raise ValueError(f'{name} must be a finite number > 0 or None, got '
                         f'{value!r}')
    return float(value)


@MODELS.register_module()
class GMACsLoss(nn.Module):
    """Keep a DynOPool model's compute in check (Jang et al., CVPR 2022).

    Without a target this is the paper's term ``lambda * L_GMACs``, where
    ``L_GMACs`` is the model's current GMACs per image, differentiable w.r.t.
    every DynOPool's ``alpha`` (see :class:`MACsRecorder`). With a target a
    user states the compute instead of tuning ``lambda``:

    * ``target_mode='at_most'``: ``lambda * relu(GMACs / budget - 1)``, zero
      within the budget and a constant pull back above it ("at most X
      GMACs"); the task loss alone decides how far below the budget to go.
    * ``target_mode='match'``: ``lambda * |GMACs / budget - 1|``, a pull
      towards the budget from both sides ("X GMACs"). The task gradient on
      ``alpha`` can push compute down as well as up, so this is the mode
      that ends near a requested budget.

    Args:
        loss_weight (float): ``lambda``. Default: 1.0.
        target_gmacs (float, optional): Absolute budget in GMACs per image.
        target_ratio (float, optional): Budget as a fraction of the model's
            GMACs at the first recorded training forward (kept in the
            state dict, so a resumed run keeps the same budget).
        target_mode (str): ``'at_most'`` or ``'match'`` (see above).
            Default: ``'at_most'``.
        loss_name (str): Key in the loss dict. Default: ``'loss_gmacs'``.
    """

    TARGET_MODES = ('at_most', 'match')

    def __init__(self,
                 loss_weight: float = 1.0,
                 target_gmacs: Optional[float] = None,
                 target_ratio: Optional[float] = None,
                 target_mode: str = 'at_most',
                 loss_name: str = 'loss_gmacs') -> None:
        super().__init__()
        if target_gmacs is not None and target_ratio is not None:
            raise ValueError('give either target_gmacs or target_ratio, not '
                             'both')
        if not isinstance(loss_weight, (int, float)) or loss_weight < 0:
            raise ValueError(f'loss_weight must be a number >= 0, got '
                             f'{loss_weight!r}')
        self.loss_weight = float(loss_weight)
        self.target_gmacs = check_positive(target_gmacs, 'target_gmacs')
        self.target_ratio = check_positive(target_ratio, 'target_ratio')
        if target_mode not in self.TARGET_MODES:
            raise ValueError(f'target_mode must be one of {self.TARGET_MODES},'
                             f' got {target_mode!r}')
        self.target_mode = target_mode
        self._loss_name = loss_name
        self.register_buffer('initial_gmacs', torch.zeros(()))
        self._recorder: Optional[MACsRecorder] = None

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def attach(self, model: nn.Module) -> 'GMACsLoss':
        """Record the MACs of every forward of ``model`` from now on."""
        if self._recorder is not None:
            self._recorder.remove()
        self._recorder = MACsRecorder(model)
        return self

    @property
    def recorder(self) -> MACsRecorder:
        if self._recorder is None:
            raise RuntimeError('GMACsLoss is not attached to a model: call '
                               'loss.attach(model) once after building it')
        return self._recorder

    @property
    def current_gmacs(self) -> float:
        """GMACs per image of the last recorded forward."""
        return self.recorder.macs / 1e9

    @property
    def budget_gmacs(self) -> Optional[float]:
        """The GMACs budget, when a target is set (None before the first
        forward for ``target_ratio``)."""
        if self.target_gmacs is not None:
            return self.target_gmacs
        if self.target_ratio is not None and self.initial_gmacs > 0:
            return self.target_ratio * float(self.initial_gmacs)
        return None

    def forward(self) -> Tensor:
        """The budget loss of the last recorded forward."""
        gmacs = self.recorder.gmacs(device=self.initial_gmacs.device)
        if self.initial_gmacs <= 0 and self.training:
            self.initial_gmacs.fill_(float(gmacs.detach()))
        budget = self.budget_gmacs
        if budget is None and self.target_ratio is None:
            return self.loss_weight * gmacs
        if budget is None:  # target_ratio, but nothing recorded in training
            budget = float(gmacs.detach())
        excess = gmacs / budget - 1.0
        if self.target_mode == 'match':
            return self.loss_weight * excess.abs()
        return self.loss_weight * F.relu(excess)

    def extra_repr(self) -> str:
        return (f'loss_weight={self.loss_weight}, target_gmacs='
                f'{self.target_gmacs}, target_ratio={self.target_ratio}, '
                f'target_mode={self.target_mode!r}')
