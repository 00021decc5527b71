# Headroom probe for enlarged scenes (sparse information; the paper: grow
# the receptive field early): pool1 r = 0.354 (half the area), pool2 0.707,
# pool3 0.5: stages 2 and 3 at the fixed-stride size, stage 1 at half of it
# (below the fixed-stride GMACs).
_base_ = ['./handset-r0.25x1_toynet_stretched.py']
variant = 'enlarged'
train_dataloader = dict(dataset=dict(variant=variant))
val_dataloader = dict(dataset=dict(variant=variant))
test_dataloader = val_dataloader
custom_hooks = [
    dict(type='DynOPoolSetRatiosHook',
         ratios=dict(pool1=0.3536, pool2=0.7071, pool3=0.5)),
    dict(type='FreezeDynOPoolHook', freeze_at_iter=0),
    dict(type='DynOPoolRatioHook', interval=25)
]
