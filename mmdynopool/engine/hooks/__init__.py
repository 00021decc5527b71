from .health_hook import DynOPoolDivergenceError, DynOPoolHealthHook
from .ratio_hook import DynOPoolRatioHook
from .sr_visualization_hook import SRVisualizationHook

__all__ = [
    'DynOPoolRatioHook', 'DynOPoolHealthHook', 'DynOPoolDivergenceError',
    'SRVisualizationHook'
]
