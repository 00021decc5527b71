from .fixed_area_hook import DynOPoolFixedAreaHook
from .health_hook import DynOPoolDivergenceError, DynOPoolHealthHook
from .ratio_hook import DynOPoolRatioHook
from .ratio_warmup_hook import DynOPoolRatioWarmupHook
from .set_ratios_hook import DynOPoolSetRatiosHook
from .sr_visualization_hook import SRVisualizationHook

__all__ = [
    'DynOPoolRatioHook', 'DynOPoolHealthHook', 'DynOPoolDivergenceError',
    'SRVisualizationHook', 'DynOPoolFixedAreaHook', 'DynOPoolSetRatiosHook',
    'DynOPoolRatioWarmupHook'
]
