# OFFLINE data: real photos shipped inside scikit-image's wheel (nothing to
# download). 16 photos train, 2 held-out photos evaluate; LR made on the fly
# with MATLAB-like bicubic downscaling. One base for every scale: the
# recipes inherit skimage_x2.py / _x4.py, which set `scale` and the LR
# patch size.
scale = 2
lr_patch_size = 32

train_names = [
    'brick', 'camera', 'cell', 'chelsea', 'clock', 'coins', 'grass', 'gravel',
    'hubble_deep_field', 'immunohistochemistry', 'moon', 'motorcycle_left',
    'page', 'retina', 'rocket', 'text'
]
held_out_names = ['astronaut', 'coffee']

train_pipeline = [
    dict(type='LoadSRPair'),
    dict(type='PairedRandomCrop', lr_patch_size=lr_patch_size),
    dict(type='BicubicDownscale'),  # downscale the HR crop only: fast
    dict(type='PairedRandomFlip', prob=0.5),
    dict(type='PairedRandomRot90', prob=0.5),
    dict(type='PackSRInputs'),
]
test_pipeline = [
    dict(type='LoadSRPair'),
    dict(type='BicubicDownscale'),  # whole image, as for Set5
    dict(type='PackSRInputs'),
]

train_dataloader = dict(batch_size=8,
                        num_workers=1,
                        persistent_workers=True,
                        sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset=dict(type='SkimageSRDataset',
                                     names=train_names,
                                     scale=scale,
                                     dataset_name='skimage-train',
                                     pipeline=train_pipeline))
val_dataloader = dict(batch_size=1,
                      num_workers=0,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type='SkimageSRDataset',
                                   names=held_out_names,
                                   scale=scale,
                                   dataset_name='skimage',
                                   test_mode=True,
                                   pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = [
    dict(type='PSNR', convert_to='Y'),
    dict(type='SSIM', convert_to='Y'),
]
test_evaluator = val_evaluator
