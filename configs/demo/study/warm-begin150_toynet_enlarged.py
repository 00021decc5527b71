# warm-begin150_toynet_stretched.py (alpha held, its moments warmed, for 150
# iterations instead of 100) on the enlarged scenes (STUDY.md section 11).
_base_ = ['./warm-begin150_toynet_stretched.py']
variant = 'enlarged'
train_dataloader = dict(dataset=dict(variant=variant))
val_dataloader = dict(dataset=dict(variant=variant))
test_dataloader = val_dataloader
