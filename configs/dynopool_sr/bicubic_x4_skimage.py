# Bicubic baseline (MATLAB-like imresize, no parameters) on the 2 held-out
# scikit-image photos of the offline recipe.
# It has no weights: test it with an empty checkpoint, see README.md.
_base_ = ['./_base_/sr_runtime.py', './_base_/skimage_x4.py']

model = dict(type='SRModel',
             generator=dict(type='BicubicUpsampler', scale=4),
             data_preprocessor=dict(type='SRDataPreprocessor'))

train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
custom_hooks = []
