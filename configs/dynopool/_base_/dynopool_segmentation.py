# What every DynOPool segmentation recipe adds to the mmseg recipe it mirrors:
# the imports, the ratio and health hooks, the segmentor with the budget loss
# and the optimiser constructor. A recipe lists it next to its mmseg base:
#
#   _base_ = ['mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py',
#             './_base_/dynopool_segmentation.py']
#   model = dict(_base_.pop('dynopool_model'), backbone=dict(...))
#   optim_wrapper = dict(_base_.pop('dynopool_optim_wrapper'))
#
# mmengine refuses a key that two sibling bases both define, and the mmseg
# base defines `model` and `optim_wrapper`; so their DynOPool parts are kept
# here under `dynopool_model` and `dynopool_optim_wrapper`, which the recipe
# takes out of `_base_` (pop, so they do not stay in the resolved config) and
# merges into its own `model` / `optim_wrapper`. `dict(...)` around them keeps
# mmengine from stamping a `_scope_` on them.
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
# r_h, r_w, sizes and GMACs in the log and work_dir/dynopool_ratios.json;
# warnings / a clear stop when a ratio or a loss goes wrong.
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=50),
    dict(type='DynOPoolHealthHook')
]
dynopool_model = dict(
    type='DynOPoolEncoderDecoder',
    # At most the GMACs of the first training step (~ the mmseg baseline);
    # for the paper's plain lambda * GMACs use target_ratio=None and a small
    # loss_weight (e.g. 0.01).
    budget_loss=dict(type='GMACsLoss', loss_weight=1.0, target_ratio=1.0))
# alpha: no weight decay (it would push alpha = 1/r to 0) and its own lr.
dynopool_optim_wrapper = dict(
    constructor='DynOPoolOptimWrapperConstructor',
    paramwise_cfg=dict(alpha_lr_mult=1.0))
