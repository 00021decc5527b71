# OFFLINE recipe: a small EDSR (c32, 4 res blocks) with a DynOPool x4 tail
# (two stages, learned r > 1, init 2), trained on 16 scikit-image photos
# for 600 iterations at batch 8 (< 15 min on 2 CPU cores), evaluated on 2
# held-out photos.
# The global bicubic skip (also in the pixel-shuffle baseline) makes the
# network learn the residual over bicubic, so a short CPU run converges.
_base_ = ['./_base_/skimage_x4.py', './_base_/schedule_offline.py']

model = dict(type='SRModel',
             generator=dict(type='EDSRDynOPoolNet',
                            scale=4,
                            mid_channels=32,
                            num_blocks=4,
                            upsample_skip='bicubic'),
             pixel_loss=dict(type='PixelLoss', criterion='l1'),
             budget_loss=dict(type='GMACsLoss',
                              loss_weight=0.1,
                              target_ratio=1.0),
             data_preprocessor=dict(type='SRDataPreprocessor'))
