# The matched recipe (dynopool-matched_toynet_tiled.py, warmed warm-up) with
# alpha's lr at x7 instead of x10: between x5 (meets twin - 0.2 on tiled
# and enlarged, +0.47 on stretched) and x10 (+0.85 on stretched, -0.25 /
# -0.27 on tiled / enlarged) (STUDY.md section 11).
_base_ = ['../dynopool-matched_toynet_tiled.py']
optim_wrapper = dict(paramwise_cfg=dict(alpha_lr_mult=7.0))
