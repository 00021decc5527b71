# Budget mode with a stated target: 70% of the GMACs of the fixed-stride
# twin (the network's GMACs at its first training step). Equivalent:
# target_gmacs=0.7 * (GMACs of fixed-stride_toynet_stretched.py).
# 'match' pulls towards the budget from both sides: with 'at_most' the task
# gradient alone drives this toy model far below the budget.
_base_ = ['./dynopool_toynet_stretched.py']
model = dict(budget_loss=dict(type='GMACsLoss', loss_weight=1.0,
                              target_ratio=0.7, target_mode='match'))
