# Headroom probe (configs/demo/STUDY.md): the DynOPool network at hand-set,
# fixed ratios - pool1 at r = (0.25, 1.0) (a 16x64 map: the same area, hence
# the same GMACs, as the fixed-stride 32x32), pool2/pool3 at 0.5 - trained
# for 600 iterations like its fixed-stride twin. No budget loss (the sizes
# never change).
_base_ = ['../dynopool_toynet_stretched.py']
model = dict(budget_loss=None)
custom_hooks = [
    dict(type='DynOPoolSetRatiosHook', ratios=dict(pool1=(0.25, 1.0))),
    dict(type='FreezeDynOPoolHook', freeze_at_iter=0),
    dict(type='DynOPoolRatioHook', interval=25)
]
