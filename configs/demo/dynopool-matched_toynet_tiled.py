# dynopool-matched_toynet_stretched.py (the budget-matched recipe) on the
# tiled scenes.
_base_ = ['./dynopool-matched_toynet_stretched.py']
variant = 'tiled'
train_dataloader = dict(dataset=dict(variant=variant))
val_dataloader = dict(dataset=dict(variant=variant))
test_dataloader = val_dataloader
