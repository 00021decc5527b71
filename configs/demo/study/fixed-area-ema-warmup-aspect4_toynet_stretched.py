# fixed-area-ema-warmup_toynet_stretched.py with r_h / r_w kept within
# [1/4, 4] (DynOPoolFixedAreaHook max_aspect=4).
_base_ = ['./fixed-area-ema_toynet_stretched.py']
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=25),
    dict(type='FreezeDynOPoolHook', freeze_at_iter=300),
    dict(type='DynOPoolFixedAreaHook', max_aspect=4.0),
    dict(type='DynOPoolRatioWarmupHook', begin_iter=100)
]
