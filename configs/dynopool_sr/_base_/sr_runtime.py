# Runtime shared by every SR recipe: mmengine root registries (no mm scope).
default_scope = None
custom_imports = dict(imports=['mmdynopool'],
                      allow_failed_imports=False)

env_cfg = dict(cudnn_benchmark=False,
               mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook',
                    interval=5000,
                    by_epoch=False,
                    max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # tools/test.py --show-dir DIR turns on saving SR outputs as PNG.
    visualization=dict(type='SRVisualizationHook', draw=False))

# r_h, r_w, sizes and GMACs of every DynOPool (and the model's GMACs for
# the baselines) in the log and in <work_dir>/dynopool_ratios.json.
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=100),
    dict(type='DynOPoolHealthHook')
]

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer',
                  vis_backends=vis_backends,
                  name='visualizer')
log_processor = dict(type='LogProcessor', window_size=100, by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
