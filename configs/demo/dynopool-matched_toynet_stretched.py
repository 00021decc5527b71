# The budget-matched recipe, for comparing mIoU with the fixed-stride twin
# (fixed-stride_toynet_stretched.py) at no more GMACs (configs/demo/STUDY.md
# has the measurements behind each choice):
# * DynOPoolFixedAreaHook holds each DynOPool's output area at (at most) its
#   starting one, the twin's, after every step: the ratios can only trade
#   height for width, so the model keeps (at most) the twin's GMACs without a
#   budget loss. A budget loss in 'match' mode set the size of alpha's Adam
#   steps by its own gradient (4-50x the task gradient's spread) and the
#   aspect hardly moved;
# * AdamW beta1 = 0.99 for alpha (alpha_optim_cfg): its first moment averages
#   the noisy gradient over ~100 steps (SNR ~0.3 a batch) instead of ~10;
#   lr x10 (x30 let the late layers run away to slivers);
# * alpha held for the first 100 iterations (DynOPoolRatioWarmupHook): the
#   EMA starts on the gradient of partly trained weights; without it one
#   seed in 5 turned its late layers taller than wide early on. Its Adam
#   moments are warmed meanwhile (warm_moments=True): otherwise the first
#   free steps are lr long whatever the signal and the ratios drift off
#   r = 0.5 where there is no headroom (STUDY.md sections 8-9);
# * after 300 of the 600 iterations the ratios are frozen
#   (FreezeDynOPoolHook): the last half trains the weights at fixed feature
#   sizes, the ones the model is tested at.
# Checkpoints keep the learned alpha, so tools/test.py works on them.
_base_ = ['./dynopool_toynet_stretched.py']
model = dict(budget_loss=None)
optim_wrapper = dict(
    paramwise_cfg=dict(alpha_lr_mult=10.0,
                       alpha_optim_cfg=dict(betas=(0.99, 0.999))))
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=25),
    dict(type='FreezeDynOPoolHook', freeze_at_iter=300),
    dict(type='DynOPoolFixedAreaHook'),
    dict(type='DynOPoolRatioWarmupHook', begin_iter=100, warm_moments=True)
]
