# Baseline: EDSR-baseline (c64, 16 res blocks) with pixel-shuffle x2
# upsampling, same data and schedule as the DynOPool recipe.
_base_ = [
    './_base_/sr_runtime.py', './_base_/div2k_set5_set14_x2.py',
    './_base_/schedule_300k.py'
]

model = dict(type='SRModel',
             generator=dict(type='EDSRNet',
                            scale=2,
                            mid_channels=64,
                            num_blocks=16,
                            res_scale=1.0),
             pixel_loss=dict(type='PixelLoss', criterion='l1',
                             loss_weight=1.0),
             data_preprocessor=dict(type='SRDataPreprocessor'))

default_hooks = dict(checkpoint=dict(save_best='Set5/PSNR', rule='greater'))
