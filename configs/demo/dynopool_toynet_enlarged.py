# Enlarged scenes (a half-size scene enlarged x2): sparse information.
# The paper's finding: early layers grow their receptive field (a smaller
# ratio than on tiled scenes).
_base_ = ['./_base_/toynet_dynopool.py']
variant = 'enlarged'
train_dataloader = dict(dataset=dict(variant=variant))
val_dataloader = dict(dataset=dict(variant=variant))
test_dataloader = val_dataloader
