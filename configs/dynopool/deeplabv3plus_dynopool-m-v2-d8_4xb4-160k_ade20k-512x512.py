_base_ = [
    'mmseg::mobilenet_v2/mobilenet-v2-d8_deeplabv3plus_4xb4-160k_ade20k-512x512.py',
    './_base_/dynopool_segmentation.py'
]
# The stem conv, the strided layers (2, 3) and the layers the -d8 recipe
# dilates instead of striding (4, 6) get a DynOPool; the ImageNet weights of
# the base recipe (model.pretrained) still load.
model = dict(
    _base_.pop('dynopool_model'),
    backbone=dict(
        type='DynOPoolMobileNetV2',
        dynopool_cfg=dict(aggregation='max', ratio_range=(1 / 16, 4))))
optim_wrapper = dict(_base_.pop('dynopool_optim_wrapper'))
