# The committed matched recipe (dynopool-matched_toynet_tiled.py: fixed area,
# alpha EMA beta1 0.99, lr x10, alpha held 100 iterations, frozen at 300)
# with alpha's Adam moments warmed during the warm-up
# (DynOPoolRatioWarmupHook warm_moments=True): the optimiser steps on
# alpha's gradients from the first iteration and alpha is put back, so the
# first free steps average ~100 batches instead of a few (which made the
# ratios drift off r = 0.5 in a seed-dependent direction on tiled and
# enlarged, configs/demo/STUDY.md section 8).
_base_ = ['../dynopool-matched_toynet_tiled.py']
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=25),
    dict(type='FreezeDynOPoolHook', freeze_at_iter=300),
    dict(type='DynOPoolFixedAreaHook'),
    dict(type='DynOPoolRatioWarmupHook', begin_iter=100, warm_moments=True)
]
