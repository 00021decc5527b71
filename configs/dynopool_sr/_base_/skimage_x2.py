# The offline scikit-image photos at x2.
_base_ = './skimage.py'
scale = 2
lr_patch_size = 32
# A text config fixes `scale` and `lr_patch_size` where the base uses them,
# when the base is read: the crop and the datasets get this file's values
# again.
train_pipeline = [
    dict(step, lr_patch_size=lr_patch_size)
    if step.type == 'PairedRandomCrop' else dict(step)
    for step in _base_.train_pipeline
]
train_dataloader = dict(dataset=dict(scale=scale, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(scale=scale))
test_dataloader = val_dataloader
