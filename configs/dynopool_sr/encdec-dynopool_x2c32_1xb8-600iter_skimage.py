# OFFLINE recipe: the DynOPool encoder-decoder (learned r < 1 down, r > 1
# up and in the x2 tail), c32, on the scikit-image photos.
_base_ = ['./_base_/skimage_x2.py', './_base_/schedule_offline.py']

model = dict(type='SRModel',
             generator=dict(type='DynOPoolEncDecSRNet',
                            scale=2,
                            mid_channels=32,
                            channel_mults=(1, 2),
                            num_blocks=2,
                            upsample_skip='bicubic'),
             pixel_loss=dict(type='PixelLoss', criterion='l1'),
             budget_loss=dict(type='GMACsLoss',
                              loss_weight=0.1,
                              target_ratio=1.0),
             data_preprocessor=dict(type='SRDataPreprocessor'))
