# fixed-area_toynet_stretched.py with an EMA of alpha's gradient over ~100
# steps (AdamW beta1 = 0.99 for alpha only) and 3x its learning rate.
_base_ = ['./fixed-area_toynet_stretched.py']
optim_wrapper = dict(
    paramwise_cfg=dict(alpha_lr_mult=30.0,
                       alpha_optim_cfg=dict(betas=(0.99, 0.999))))
