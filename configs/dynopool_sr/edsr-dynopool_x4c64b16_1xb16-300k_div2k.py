# EDSR-baseline (c64, 16 res blocks) whose x4 upsampler is two DynOPool
# stages with learned r > 1 (each initialised at r = 2), trained on DIV2K,
# evaluated on Set5 / Set14 (PSNR/SSIM on Y).
_base_ = [
    './_base_/sr_runtime.py', './_base_/div2k_set5_set14_x4.py',
    './_base_/schedule_300k.py'
]

model = dict(
    type='SRModel',
    generator=dict(type='EDSRDynOPoolNet',
                   scale=4,
                   mid_channels=64,
                   num_blocks=16,
                   res_scale=1.0,
                   aggregation='max'),
    pixel_loss=dict(type='PixelLoss', criterion='l1', loss_weight=1.0),
    # Compute stays at most the initial (r = 2) GMACs; below it the pixel
    # loss alone decides the internal resolution.
    budget_loss=dict(type='GMACsLoss', loss_weight=0.1, target_ratio=1.0),
    data_preprocessor=dict(type='SRDataPreprocessor'))

default_hooks = dict(checkpoint=dict(save_best='Set5/PSNR', rule='greater'))
