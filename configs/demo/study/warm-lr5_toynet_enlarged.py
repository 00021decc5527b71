# The matched recipe (dynopool-matched_toynet_enlarged.py, warmed warm-up) with
# alpha's lr at x5 instead of x10: with warmed moments the first free steps
# no longer drift, so a smaller step may keep tiled / enlarged at the fixed
# stride (STUDY.md section 11).
_base_ = ['../dynopool-matched_toynet_enlarged.py']
optim_wrapper = dict(paramwise_cfg=dict(alpha_lr_mult=5.0))
