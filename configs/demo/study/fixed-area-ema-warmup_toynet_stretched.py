# fixed-area-ema_toynet_stretched.py, with the ratios held for the first 100
# iterations (DynOPoolRatioWarmupHook): they learn from 100 to 300, on the
# gradient of partly trained weights.
_base_ = ['./fixed-area-ema_toynet_stretched.py']
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=25),
    dict(type='FreezeDynOPoolHook', freeze_at_iter=300),
    dict(type='DynOPoolFixedAreaHook'),
    dict(type='DynOPoolRatioWarmupHook', begin_iter=100)
]
