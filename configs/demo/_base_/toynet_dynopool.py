# ToyNet (stem + 3 stages) with a DynOPool at every resizing step, an FCN
# head on the last stage, the GMACs budget loss and a short CPU schedule
# (600 iterations of batch 8: ~30 s on 2 idle cores, a few minutes on busy
# ones).
_base_ = ['./toy-scenes_64x64.py']
custom_imports = dict(imports=['mmdynopool'], allow_failed_imports=False)
default_scope = 'mmseg'
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[128.0, 128.0, 128.0],
    std=[40.0, 40.0, 40.0],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size=(64, 64))
model = dict(
    type='DynOPoolEncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ToyNet',
        stem_channels=8,
        stage_channels=(16, 32, 64),
        num_convs=2,
        resize='dynopool',
        dynopool_cfg=dict(aggregation='max', ratio_range=(1 / 8, 2))),
    decode_head=dict(
        type='FCNHead',
        in_channels=64,
        in_index=3,
        channels=32,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=4,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    # Budget: at most the GMACs of the fixed-stride twin (= this network at
    # its first training step, every DynOPool at r = 0.5). The loss is
    # relu(GMACs / budget - 1): free below the budget, a pull back above.
    # The paper's plain L_seg + lambda * GMACs: target_ratio=None.
    budget_loss=dict(type='GMACsLoss', loss_weight=1.0, target_ratio=1.0),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    # alpha: no weight decay; x10 lr so the ratios settle within the 600
    # iterations (at x1 they move by a few hundredths), and the cosine decay
    # below freezes them towards the end.
    constructor='DynOPoolOptimWrapperConstructor',
    paramwise_cfg=dict(alpha_lr_mult=10.0))
max_iters = 600
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         eta_min_ratio=0.05)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=max_iters, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
# Ratios held for the first 100 iterations while Adam's moments of alpha
# are warmed on their gradients (configs/demo/STUDY.md section 9: without
# it the first free steps are lr long whatever the signal, and one seed in
# five ended with its last stage taller than wide).
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=25),
    dict(type='DynOPoolRatioWarmupHook', begin_iter=100, warm_moments=True)
]
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
