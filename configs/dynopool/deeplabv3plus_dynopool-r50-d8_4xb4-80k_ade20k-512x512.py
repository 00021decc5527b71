_base_ = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
# Every resizing step of the ResNetV1c-50-D8 (stem conv, stem max-pool,
# layer2's stride) and the two dilated stages (layer3, layer4) get a DynOPool;
# the ImageNet weights of the base recipe (model.pretrained) still load.
model = dict(
    type='DynOPoolEncoderDecoder',
    backbone=dict(
        type='DynOPoolResNetV1c',
        dynopool_cfg=dict(aggregation='max', ratio_range=(1 / 16, 4))),
    # At most the GMACs of the first training step (~ the mmseg baseline);
    # for the paper's plain lambda * GMACs use target_ratio=None and a small
    # loss_weight (e.g. 0.01).
    budget_loss=dict(type='GMACsLoss', loss_weight=1.0, target_ratio=1.0))
# alpha: no weight decay (it would push alpha = 1/r to 0) and its own lr.
optim_wrapper = dict(
    constructor='DynOPoolOptimWrapperConstructor',
    paramwise_cfg=dict(alpha_lr_mult=1.0))
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=50),
    dict(type='DynOPoolHealthHook')
]
