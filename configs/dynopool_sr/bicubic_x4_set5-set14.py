# Bicubic baseline (MATLAB-like imresize, no parameters) on Set5 / Set14.
# It has no weights: test it with an empty checkpoint, see README.md.
_base_ = ['./_base_/sr_runtime.py', './_base_/div2k_set5_set14_x4.py']

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
