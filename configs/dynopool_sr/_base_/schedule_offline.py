# A CPU-sized schedule for the offline recipe (2 cores, under 15 minutes),
# on top of the shared runtime.
_base_ = ['./sr_runtime.py']

max_iters = 600
train_cfg = dict(type='IterBasedTrainLoop',
                 max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.999)),
                     constructor='DynOPoolOptimWrapperConstructor',
                     paramwise_cfg=dict(alpha_lr_mult=1.0))

param_scheduler = dict(type='CosineAnnealingLR',
                       by_epoch=False,
                       T_max=max_iters,
                       eta_min=1e-6)

default_hooks = dict(logger=dict(interval=50),
                     checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
