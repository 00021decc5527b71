_base_ = [
    'mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py',
    './_base_/dynopool_segmentation.py'
]
# Every resizing step of the ResNetV1c-50-D8 (stem conv, stem max-pool,
# layer2's stride) and the two dilated stages (layer3, layer4) get a DynOPool;
# the ImageNet weights of the base recipe (model.pretrained) still load.
model = dict(
    _base_.pop('dynopool_model'),
    backbone=dict(
        type='DynOPoolResNetV1c',
        dynopool_cfg=dict(aggregation='max', ratio_range=(1 / 16, 4))))
optim_wrapper = dict(_base_.pop('dynopool_optim_wrapper'))
