# DIV2K (train) -> Set5 + Set14 (val/test) at x4.
_base_ = './div2k_set5_set14.py'
scale = 4
# A text config fixes `scale` where the base uses it, when the base is read:
# each dataset of the base gets this file's `scale` again.
train_dataloader = dict(dataset=dict(scale=scale))
val_dataloader = dict(dataset=dict(datasets=[
    dict(dataset, scale=scale)
    for dataset in _base_.val_dataloader.dataset.datasets
]))
test_dataloader = val_dataloader
