# The budget-matched recipe, for comparing mIoU with the fixed-stride twin
# (fixed-stride_toynet_stretched.py) at no more GMACs:
# * the two-sided budget loss holds the GMACs at 97% of the twin's (the
#   network's GMACs at its first step): the ratios may only trade
#   resolution between stages and axes, not add compute;
# * after 300 of the 600 iterations the ratios are frozen
#   (FreezeDynOPoolHook): the last half trains the weights at fixed
#   feature sizes, the ones the model is tested at.
# Checkpoints keep the learned alpha, so tools/test.py works on them.
_base_ = ['./dynopool_toynet_stretched.py']
model = dict(budget_loss=dict(type='GMACsLoss', loss_weight=1.0,
                              target_ratio=0.97, target_mode='match'))
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=25),
    dict(type='FreezeDynOPoolHook', freeze_at_iter=300)
]
