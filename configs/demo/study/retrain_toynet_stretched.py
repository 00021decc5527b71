# Search, then retrain (configs/demo/STUDY.md): the weights are trained from
# scratch for 600 iterations at the ratios a search run learned (its work dir
# or dynopool_ratios.json as `source`; compare_ratios.py --search-work-dir
# fills it in per seed), frozen from the first iteration. No budget loss
# (the sizes never change).
_base_ = ['../dynopool_toynet_stretched.py']
model = dict(budget_loss=None)
custom_hooks = [
    dict(type='DynOPoolRatioHook', interval=25),
    dict(type='FreezeDynOPoolHook', freeze_at_iter=0),
    dict(type='DynOPoolSetRatiosHook', source=None)
]
