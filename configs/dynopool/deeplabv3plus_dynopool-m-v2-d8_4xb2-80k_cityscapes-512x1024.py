_base_ = 'mmseg::mobilenet_v2/mobilenet-v2-d8_deeplabv3plus_4xb2-80k_cityscapes-512x1024.py'
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
# The stem conv, the strided layers (2, 3) and the layers the -d8 recipe
# dilates instead of striding (4, 6) get a DynOPool; the ImageNet weights of
# the base recipe (model.pretrained) still load.
model = dict(
    type='DynOPoolEncoderDecoder',
    backbone=dict(
        type='DynOPoolMobileNetV2',
        dynopool_cfg=dict(aggregation='max', ratio_range=(1 / 16, 4))),
    # At most the GMACs of the first training step (~ the mmseg baseline).
    budget_loss=dict(type='GMACsLoss', loss_weight=1.0, target_ratio=1.0))
optim_wrapper = dict(
    constructor='DynOPoolOptimWrapperConstructor',
    paramwise_cfg=dict(alpha_lr_mult=1.0))
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=50),
    dict(type='DynOPoolHealthHook')
]
