# The matched recipe (dynopool-matched_toynet_tiled.py, warmed warm-up) with
# alpha held (its moments warmed) for 150 iterations instead of 100: more
# trained weights and longer-averaged moments before the ratios move
# (STUDY.md section 11).
_base_ = ['../dynopool-matched_toynet_tiled.py']
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=25),
    dict(type='FreezeDynOPoolHook', freeze_at_iter=300),
    dict(type='DynOPoolFixedAreaHook'),
    dict(type='DynOPoolRatioWarmupHook', begin_iter=150, warm_moments=True)
]
