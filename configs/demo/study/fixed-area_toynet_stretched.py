# Fix candidate (configs/demo/STUDY.md): no budget loss; DynOPoolFixedAreaHook
# holds every layer's area r_h * r_w after each step, so only the aspect is
# learned and Adam's step on alpha is scaled by the task gradient alone.
# Ratios frozen after 300 of 600 iterations, as in the matched recipe.
_base_ = ['../dynopool_toynet_stretched.py']
model = dict(budget_loss=None)
custom_hooks = [
    dict(type='DynOPoolFixedAreaHook'),
    dict(type='DynOPoolRatioHook', interval=25),
    dict(type='FreezeDynOPoolHook', freeze_at_iter=300)
]
