"""Tiny mmseg model parts shared by the segmentor and deployment tests
(CPU, seconds; no pretrained weights)."""
NUM_CLASSES = 4
NORM = dict(type='BN', requires_grad=True)
DATA_PREPROCESSOR = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
# ResNetV1c-18-D8 with 8 base channels: every resizing step a DynOPool.
RESNET_D8 = dict(
    type='DynOPoolResNetV1c',
    depth=18,
    stem_channels=8,
    base_channels=8,
    strides=(1, 2, 1, 1),
    dilations=(1, 1, 2, 4),
    contract_dilation=True,
    norm_cfg=NORM)
FCN_HEAD = dict(
    type='FCNHead',
    in_channels=64,
    in_index=3,
    channels=8,
    num_convs=2,
    concat_input=True,
    num_classes=NUM_CLASSES,
    norm_cfg=NORM)
