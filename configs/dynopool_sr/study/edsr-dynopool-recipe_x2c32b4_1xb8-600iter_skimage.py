# SR study: the demo's matched recipe (configs/demo/dynopool-matched_*) on
# the DynOPool tail: each stage's output area held (DynOPoolFixedAreaHook,
# no budget loss), alpha's gradient averaged by Adam beta1 = 0.99, alpha
# held for 100 iterations with its moments warmed, then frozen after 300.
# alpha's lr stays the recipe's (x1): SR has a target size to keep.
_base_ = ['../edsr-dynopool_x2c32b4_1xb8-600iter_skimage.py']
model = dict(budget_loss=None)
optim_wrapper = dict(paramwise_cfg=dict(
    alpha_optim_cfg=dict(betas=(0.99, 0.999))))
custom_hooks = _base_.custom_hooks + [
    dict(type='FreezeDynOPoolHook', freeze_at_iter=300),
    dict(type='DynOPoolFixedAreaHook'),
    dict(type='DynOPoolRatioWarmupHook', begin_iter=100, warm_moments=True)
]
