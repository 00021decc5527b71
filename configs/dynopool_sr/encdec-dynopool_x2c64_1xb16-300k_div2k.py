# Encoder-decoder restorer: DynOPool stages learn r < 1 on the way down
# (init 0.5), r > 1 on the way up (init 2) and in the x2 SR tail (init 2);
# skips are resized to the decoder's size. DIV2K -> Set5 / Set14.
_base_ = [
    './_base_/sr_runtime.py', './_base_/div2k_set5_set14_x2.py',
    './_base_/schedule_300k.py'
]

model = dict(type='SRModel',
             generator=dict(type='DynOPoolEncDecSRNet',
                            scale=2,
                            mid_channels=64,
                            channel_mults=(1, 2, 2),
                            num_blocks=2,
                            down_ratio=0.5),
             pixel_loss=dict(type='PixelLoss', criterion='l1',
                             loss_weight=1.0),
             budget_loss=dict(type='GMACsLoss',
                              loss_weight=0.1,
                              target_ratio=1.0),
             data_preprocessor=dict(type='SRDataPreprocessor'))

default_hooks = dict(checkpoint=dict(save_best='Set5/PSNR', rule='greater'))
