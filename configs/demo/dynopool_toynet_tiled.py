# Tiled scenes (a scene shrunk x0.5, 2 x 2 tiles): dense local information.
# The paper's finding: early layers keep a small receptive field (a larger
# ratio than on enlarged scenes).
_base_ = ['./_base_/toynet_dynopool.py']
variant = 'tiled'
train_dataloader = dict(dataset=dict(variant=variant))
val_dataloader = dict(dataset=dict(variant=variant))
test_dataloader = val_dataloader
