# fixed-area-ema-lr10_toynet_stretched.py with every layer's r_h / r_w kept
# within [1/2, 2] (DynOPoolFixedAreaHook max_aspect=2): a guard against the
# runaway of the late layers seen at x30 (configs/demo/STUDY.md).
_base_ = ['./fixed-area-ema-lr10_toynet_stretched.py']
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=25),
    dict(type='FreezeDynOPoolHook', freeze_at_iter=300),
    dict(type='DynOPoolFixedAreaHook', max_aspect=2.0)
]
