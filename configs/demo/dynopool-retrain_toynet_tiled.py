# dynopool-retrain_toynet_stretched.py (search, then retrain) on the tiled
# scenes, from the ratios of dynopool-matched_toynet_tiled.py.
_base_ = ['./dynopool-retrain_toynet_stretched.py']
variant = 'tiled'
train_dataloader = dict(dataset=dict(variant=variant))
val_dataloader = dict(dataset=dict(variant=variant))
test_dataloader = val_dataloader
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=25),
    dict(type='FreezeDynOPoolHook', freeze_at_iter=0),
    dict(type='DynOPoolSetRatiosHook',
         source='work_dirs/dynopool-matched_toynet_tiled',
         snap_pixels=1)
]
