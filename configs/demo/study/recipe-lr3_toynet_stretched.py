# The committed matched recipe (dynopool-matched_toynet_stretched.py: fixed area,
# alpha EMA beta1 0.99, alpha held 100 iterations, frozen at 300) with
# alpha's lr at x3 instead of x10. On tiled/enlarged (no headroom) the
# ratios of the x10 recipe drift off r = 0.5 right after the warm-up, in a
# direction that differs by seed (Adam's first bias-corrected steps follow
# a mean over a few batches), and the weights then hold them there; a
# smaller step should shrink that drift. Measured (configs/demo/STUDY.md,
# section 8, 5 seeds): tiled (twin's sizes in 4 of 5) meets twin - 0.2,
# enlarged improves to -0.3 (not met), stretched loses most of its gain: not
# the recommended recipe.
_base_ = ['../dynopool-matched_toynet_stretched.py']
optim_wrapper = dict(paramwise_cfg=dict(alpha_lr_mult=3.0))
