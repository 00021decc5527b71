# The matched recipe (fixed-area-ema-lr10) with alpha held for the first 100
# iterations (DynOPoolRatioWarmupHook): alpha's EMA starts on the gradient of
# partly trained weights instead of the random-weight gradient, whose sign
# differs between layers (configs/demo/STUDY.md).
_base_ = ['./fixed-area-ema-lr10_toynet_stretched.py']
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=25),
    dict(type='FreezeDynOPoolHook', freeze_at_iter=300),
    dict(type='DynOPoolFixedAreaHook'),
    dict(type='DynOPoolRatioWarmupHook', begin_iter=100)
]
