_base_ = [
    'mmseg::segnext/segnext_mscan-t_1xb16-adamw-160k_ade20k-512x512.py',
    './_base_/dynopool_segmentation.py'
]
# The recipe's MSCAN-T, its resizing steps found by rule: the two stride-2
# convolutions of the stem and the stride-2 patch embeddings of stages 2-4
# get a DynOPool after them. The MSCAN-T ImageNet weights of the base recipe
# (backbone.init_cfg) still load.
model = dict(
    _base_.pop('dynopool_model'),
    backbone=dict(
        _delete_=True,
        type='DynOPoolBackbone',
        backbone=_base_.model.backbone,
        dynopool_cfg=dict(aggregation='max', ratio_range=(1 / 16, 4))))
# AdamW at lr 6e-5 moves alpha by at most ~lr per step: give it the head's
# x10 learning rate.
optim_wrapper = dict(
    _base_.pop('dynopool_optim_wrapper'),
    paramwise_cfg=dict(alpha_lr_mult=10.0))
