_base_ = 'mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py'
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
# The four overlapping patch embeddings (strides 4, 2, 2, 2) get a DynOPool;
# the MiT-B0 ImageNet weights of the base recipe (backbone.init_cfg) still
# load.
model = dict(
    type='DynOPoolEncoderDecoder',
    backbone=dict(
        type='DynOPoolMixVisionTransformer',
        dynopool_cfg=dict(aggregation='max', ratio_range=(1 / 16, 4))),
    # At most the GMACs of the first training step.
    budget_loss=dict(type='GMACsLoss', loss_weight=1.0, target_ratio=1.0))
# AdamW at lr 6e-5 moves alpha by at most ~lr per step: give it the head's
# x10 learning rate.
optim_wrapper = dict(
    constructor='DynOPoolOptimWrapperConstructor',
    paramwise_cfg=dict(alpha_lr_mult=10.0))
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=50),
    dict(type='DynOPoolHealthHook')
]
