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

    ``alpha_optim_cfg`` adds optimiser settings of ``alpha``'s own
    parameter group, e.g. ``dict(betas=(0.99, 0.999))`` for Adam/AdamW: a
    first moment averaged over ~100 steps instead of ~10, i.e. an EMA of
    ``alpha``'s noisy gradient (``configs/demo/STUDY.md``), or
    ``dict(momentum=0.99)`` for SGD.

    Args:
        optim_wrapper_cfg (dict): As for ``DefaultOptimWrapperConstructor``.
        paramwise_cfg (dict, optional): mmengine's paramwise options plus
            ``alpha_lr_mult`` (float, default 1.0) and ``alpha_optim_cfg``
            (dict of settings of the optimiser's parameter groups, such as
            ``betas`` or ``momentum``; default: none).
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
        alpha_optim_cfg = paramwise_cfg.pop('alpha_optim_cfg', None) or {}
        if not isinstance(alpha_optim_cfg, dict) or any(
                key in ('params', 'lr', 'lr_mult', 'decay_mult',
                        'weight_decay') for key in alpha_optim_cfg):
            raise ValueError(
                'paramwise_cfg.alpha_optim_cfg must be a dict of optimiser '
                'settings other than params/lr/weight_decay (use '
                f'alpha_lr_mult for the learning rate), got '
                f'{alpha_optim_cfg!r}')
        self.alpha_optim_cfg = dict(alpha_optim_cfg)
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def __call__(self, model: nn.Module) -> OptimWrapper:
        module = model.module if hasattr(model, 'module') else model
        custom_keys = dict(self.paramwise_cfg.get('custom_keys', {}))
        for name in alpha_parameter_names(module):
            custom_keys.setdefault(
                name,
                dict(lr_mult=self.alpha_lr_mult, decay_mult=0.0,
                     **self.alpha_optim_cfg))
        self.paramwise_cfg = dict(self.paramwise_cfg, custom_keys=custom_keys)
        return super().__call__(model)
