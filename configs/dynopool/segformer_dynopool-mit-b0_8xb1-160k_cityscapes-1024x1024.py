_base_ = [
    'mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py',
    './_base_/dynopool_segmentation.py'
]
# The four overlapping patch embeddings (strides 4, 2, 2, 2) get a DynOPool;
# the MiT-B0 ImageNet weights of the base recipe (backbone.init_cfg) still
# load.
model = dict(
    _base_.pop('dynopool_model'),
    backbone=dict(
        type='DynOPoolMixVisionTransformer',
        dynopool_cfg=dict(aggregation='max', ratio_range=(1 / 16, 4))))
# AdamW at lr 6e-5 moves alpha by at most ~lr per step: give it the head's
# x10 learning rate.
optim_wrapper = dict(
    _base_.pop('dynopool_optim_wrapper'),
    paramwise_cfg=dict(alpha_lr_mult=10.0))
