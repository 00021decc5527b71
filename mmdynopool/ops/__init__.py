from .dynopool import DynOPool, dynopool_layers
from .functional import (dynopool2d, output_size, resolve_backend,
                         straight_through_size)
from .reference import dynopool2d_reference
from .static import StaticDynOPool, static_dynopool2d
from .torch_backend import DynOPoolFunction

__all__ = [
    'DynOPool', 'StaticDynOPool', 'DynOPoolFunction', 'dynopool2d',
    'dynopool2d_reference', 'static_dynopool2d', 'output_size',
    'straight_through_size', 'dynopool_layers', 'resolve_backend'
]
