_base_ = [
    'mmseg::hrnet/fcn_hr18_4xb2-80k_cityscapes-512x1024.py',
    './_base_/dynopool_segmentation.py'
]
# The recipe's HRNetV2-W18, its resizing steps found by rule: the two stem
# convolutions and the three transitions that open the 1/8, 1/16 and 1/32
# branches get a DynOPool; the fuse layers follow the learned branch sizes.
# The ImageNet weights of the base recipe (model.pretrained) still load.
model = dict(
    _base_.pop('dynopool_model'),
    backbone=dict(
        _delete_=True,
        type='DynOPoolBackbone',
        backbone=_base_.model.backbone,
        dynopool_cfg=dict(aggregation='max', ratio_range=(1 / 16, 4))))
optim_wrapper = dict(_base_.pop('dynopool_optim_wrapper'))
