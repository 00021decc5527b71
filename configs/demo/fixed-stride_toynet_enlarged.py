# The fixed-stride twin of dynopool_toynet_enlarged.py: the same network
# with a 2x2 stride-2 max-pool at every resizing step (what every DynOPool
# starts as), no budget loss. DynOPoolRatioHook still logs its GMACs.
_base_ = ['./dynopool_toynet_enlarged.py']
model = dict(
    type='DynOPoolEncoderDecoder',
    backbone=dict(resize='maxpool', dynopool_cfg=None),
    budget_loss=None)
