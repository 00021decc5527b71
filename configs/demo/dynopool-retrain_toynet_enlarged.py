# dynopool-retrain_toynet_stretched.py (search, then retrain) on the enlarged
# scenes, from the ratios of dynopool-matched_toynet_enlarged.py.
_base_ = ['./dynopool-retrain_toynet_stretched.py']
variant = 'enlarged'
train_dataloader = dict(dataset=dict(variant=variant))
val_dataloader = dict(dataset=dict(variant=variant))
test_dataloader = val_dataloader
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=25),
    dict(type='FreezeDynOPoolHook', freeze_at_iter=0),
    dict(type='DynOPoolSetRatiosHook',
         source='work_dirs/dynopool-matched_toynet_enlarged',
         snap_pixels=1)
]
