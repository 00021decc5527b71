# Headroom probe for tiled scenes (dense local information; the paper: keep
# resolution early): pool1 r = 0.707 (twice the area), pool2 0.25, pool3
# 0.5, so that stages 2 and 3 run at half the fixed-stride area (below the
# fixed-stride GMACs).
_base_ = ['./handset-r0.25x1_toynet_stretched.py']
variant = 'tiled'
train_dataloader = dict(dataset=dict(variant=variant))
val_dataloader = dict(dataset=dict(variant=variant))
test_dataloader = val_dataloader
custom_hooks = [
    dict(type='DynOPoolSetRatiosHook',
         ratios=dict(pool1=0.7071, pool2=0.25, pool3=0.5)),
    dict(type='FreezeDynOPoolHook', freeze_at_iter=0),
    dict(type='DynOPoolRatioHook', interval=25)
]
