_base_ = 'mmseg::hrnet/fcn_hr18_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
# The recipe's HRNetV2-W18, its resizing steps found by rule: the two stem
# convolutions and the three transitions that open the 1/8, 1/16 and 1/32
# branches get a DynOPool; the fuse layers follow the learned branch sizes.
# The ImageNet weights of the base recipe (model.pretrained) still load.
model = dict(
    type='DynOPoolEncoderDecoder',
    backbone=dict(
        _delete_=True,
        type='DynOPoolBackbone',
        backbone={{_base_.model.backbone}},
        dynopool_cfg=dict(aggregation='max', ratio_range=(1 / 16, 4))),
    # At most the GMACs of the first training step.
    budget_loss=dict(type='GMACsLoss', loss_weight=1.0, target_ratio=1.0))
# alpha: no weight decay (it would push alpha = 1/r to 0) and its own lr.
optim_wrapper = dict(
    constructor='DynOPoolOptimWrapperConstructor',
    paramwise_cfg=dict(alpha_lr_mult=1.0))
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=50),
    dict(type='DynOPoolHealthHook')
]
