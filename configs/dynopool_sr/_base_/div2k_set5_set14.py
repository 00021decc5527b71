# DIV2K (train) -> Set5 + Set14 (val/test), one base for every scale: the
# recipes inherit div2k_set5_set14_x2.py / _x4.py, which set `scale`.
# Layout (data/): DIV2K/DIV2K_train_HR/0001.png, optional
# DIV2K/DIV2K_train_LR_bicubic/X{scale}/0001x{scale}.png (made on the fly
# when absent), Set5/GTmod12/baby.png, optional Set5/LRbicx{scale}/baby.png;
# same for Set14.
scale = 2
lr_patch_size = 48

train_pipeline = [
    dict(type='LoadSRPair'),
    dict(type='PairedRandomCrop', lr_patch_size=lr_patch_size),
    dict(type='BicubicDownscale'),  # no-op when the LR file exists
    dict(type='PairedRandomFlip', prob=0.5),
    dict(type='PairedRandomRot90', prob=0.5),
    dict(type='PackSRInputs'),
]
test_pipeline = [
    dict(type='LoadSRPair'),
    dict(type='BicubicDownscale'),
    dict(type='PackSRInputs'),
]

train_dataloader = dict(batch_size=16,
                        num_workers=4,
                        persistent_workers=True,
                        sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset=dict(type='SRPairedDataset',
                                     scale=scale,
                                     data_root='data/DIV2K',
                                     data_prefix=dict(
                                         gt='DIV2K_train_HR',
                                         lr='DIV2K_train_LR_bicubic/X{scale}'),
                                     dataset_name='DIV2K',
                                     pipeline=train_pipeline))


def _benchmark(name):
    return dict(type='SRPairedDataset',
                scale=scale,
                data_root=f'data/{name}',
                data_prefix=dict(gt='GTmod12', lr='LRbicx{scale}'),
                dataset_name=name,
                test_mode=True,
                pipeline=test_pipeline)


val_dataloader = dict(batch_size=1,
                      num_workers=2,
                      persistent_workers=False,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(
                          type='ConcatDataset',
                          datasets=[_benchmark('Set5'),
                                    _benchmark('Set14')]))
test_dataloader = val_dataloader

# Y channel (BT.601), `scale` pixels cropped at each border; results are
# reported per data set: Set5/PSNR, Set14/PSNR, Set5/SSIM, ...
val_evaluator = [
    dict(type='PSNR', convert_to='Y'),
    dict(type='SSIM', convert_to='Y'),
]
test_evaluator = val_evaluator
del _benchmark
