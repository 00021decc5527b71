# Vertically stretched scenes: less information per row than per column.
# The paper's finding: the learned receptive fields get wider than tall
# (r_h < r_w).
_base_ = ['./_base_/toynet_dynopool.py']
variant = 'stretched'
train_dataloader = dict(dataset=dict(variant=variant))
val_dataloader = dict(dataset=dict(variant=variant))
test_dataloader = val_dataloader
