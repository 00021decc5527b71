# fixed-area-ema_toynet_stretched.py at alpha's usual learning rate (x10 the
# base lr, as in the demo recipes) instead of x30.
_base_ = ['./fixed-area_toynet_stretched.py']
optim_wrapper = dict(
    paramwise_cfg=dict(alpha_lr_mult=10.0,
                       alpha_optim_cfg=dict(betas=(0.99, 0.999))))
