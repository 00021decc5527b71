# handset-pixel_toynet_tiled.py (pool1 33x31, one pixel off the fixed
# stride) on the stretched scenes (STUDY.md section 12).
_base_ = ['./handset-pixel_toynet_tiled.py']
variant = 'stretched'
train_dataloader = dict(dataset=dict(variant=variant))
val_dataloader = dict(dataset=dict(variant=variant))
test_dataloader = val_dataloader
