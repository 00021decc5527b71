# Budget mode with a stated target: 70% of the GMACs of the fixed-stride
# twin (the network's GMACs at its first training step). Equivalent:
# target_gmacs=0.7 * (GMACs of fixed-stride_toynet_stretched.py).
# 'match' pulls towards the budget from both sides: with 'at_most' the task
# gradient alone drives this toy model far below the budget. Weight 5: at
# weight 1 the task gradient's noise left one of 3 seeds 6% under the target
# (0.658); at 5 the 3 seeds end at 0.700, 0.706 and 0.674.
_base_ = ['./dynopool_toynet_stretched.py']
model = dict(budget_loss=dict(type='GMACsLoss', loss_weight=5.0,
                              target_ratio=0.7, target_mode='match'))
