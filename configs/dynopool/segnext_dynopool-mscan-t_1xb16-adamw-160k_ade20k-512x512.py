_base_ = 'mmseg::segnext/segnext_mscan-t_1xb16-adamw-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
# The recipe's MSCAN-T, its resizing steps found by rule: the two stride-2
# convolutions of the stem and the stride-2 patch embeddings of stages 2-4
# get a DynOPool after them. The MSCAN-T ImageNet weights of the base recipe
# (backbone.init_cfg) still load.
model = dict(
    type='DynOPoolEncoderDecoder',
    backbone=dict(
        _delete_=True,
        type='DynOPoolBackbone',
        backbone={{_base_.model.backbone}},
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
