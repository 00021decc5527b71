# OFFLINE baseline: the same small EDSR (c32, 4 res blocks, global bicubic
# skip) with pixel-shuffle x2 upsampling, same data and schedule.
_base_ = ['./_base_/skimage_x2.py', './_base_/schedule_offline.py']

model = dict(type='SRModel',
             generator=dict(type='EDSRNet',
                            scale=2,
                            mid_channels=32,
                            num_blocks=4,
                            upsample_skip='bicubic'),
             pixel_loss=dict(type='PixelLoss', criterion='l1'),
             data_preprocessor=dict(type='SRDataPreprocessor'))
