from .dynopool import DynOPool, dynopool_layers
from .functional import (DynOPoolFunction, dynopool2d, dynopool2d_reference,
                         output_size, straight_through_size)
from .static import StaticDynOPool, static_dynopool2d

__all__ = [
    'DynOPool', 'StaticDynOPool', 'DynOPoolFunction', 'dynopool2d',
    'dynopool2d_reference', 'static_dynopool2d', 'output_size',
    'straight_through_size', 'dynopool_layers'
]
