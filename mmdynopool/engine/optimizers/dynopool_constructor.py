"""Optimiser settings for DynOPool's ``alpha`` without knowing its names."""
from typing import List, Optional

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

from mmdynopool.ops import DynOPool


def alpha_parameter_names(model: nn.Module) -> List[str]:
    """Full names of every DynOPool ``alpha`` parameter of ``model``."""
    return [
        f'{name}.alpha' if name else 'alpha'
        for name, module in model.named_modules()
        if isinstance(module, DynOPool)
    ]


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class DynOPoolOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` that treats DynOPool ``alpha`` right.

    Weight decay would pull ``alpha = 1/r`` to 0, i.e. ``r`` to infinity, so
    every ``alpha`` gets ``decay_mult=0``; its learning rate is the base
    learning rate times ``alpha_lr_mult``. Everything else of
    ``paramwise_cfg`` works as in mmengine; an explicit ``custom_keys`` entry
    for an ``alpha`` name still wins.

    Config::

        optim_wrapper = dict(
            type='OptimWrapper',
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                           weight_decay=5e-4),
            constructor='DynOPoolOptimWrapperConstructor',
            paramwise_cfg=dict(alpha_lr_mult=10.0))

    Args:
        optim_wrapper_cfg (dict): As for ``DefaultOptimWrapperConstructor``.
        paramwise_cfg (dict, optional): mmengine's paramwise options plus
            ``alpha_lr_mult`` (float, default 1.0).
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        alpha_lr_mult = paramwise_cfg.pop('alpha_lr_mult', 1.0)
        if not isinstance(alpha_lr_mult, (int, float)) or alpha_lr_mult < 0:
            raise ValueError('paramwise_cfg.alpha_lr_mult must be a number '
                             f'>= 0, got {alpha_lr_mult!r}')
        self.alpha_lr_mult = float(alpha_lr_mult)
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def __call__(self, model: nn.Module) -> OptimWrapper:
        module = model.module if hasattr(model, 'module') else model
        custom_keys = dict(self.paramwise_cfg.get('custom_keys', {}))
        for name in alpha_parameter_names(module):
            custom_keys.setdefault(
                name, dict(lr_mult=self.alpha_lr_mult, decay_mult=0.0))
        self.paramwise_cfg = dict(self.paramwise_cfg, custom_keys=custom_keys)
        return super().__call__(model)
