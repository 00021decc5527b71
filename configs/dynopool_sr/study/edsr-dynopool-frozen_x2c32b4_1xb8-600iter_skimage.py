# SR study (configs/dynopool_sr/README.md, "Study"): the DynOPool tail with
# its ratios frozen at the start (r = 2 per stage), i.e. a fixed upsampler
# of DynOPool's form. Against the learned tail it tells what learning the
# ratios does; against pixel shuffle, what the tail's form costs.
_base_ = ['../edsr-dynopool_x2c32b4_1xb8-600iter_skimage.py']
model = dict(budget_loss=None)  # the sizes never change
custom_hooks = _base_.custom_hooks + [
    dict(type='FreezeDynOPoolHook', freeze_at_iter=0)
]
