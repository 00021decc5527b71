# EDSR's schedule: Adam 1e-4, 300k iterations, halved at 200k.
train_cfg = dict(type='IterBasedTrainLoop',
                 max_iters=300000,
                 val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.999)),
    # DynOPool alpha: no weight decay, own learning rate (no-op for the
    # baselines, which have no alpha).
    constructor='DynOPoolOptimWrapperConstructor',
    paramwise_cfg=dict(alpha_lr_mult=1.0))

param_scheduler = dict(type='MultiStepLR',
                       by_epoch=False,
                       milestones=[200000],
                       gamma=0.5)
