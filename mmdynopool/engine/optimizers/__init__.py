from .dynopool_constructor import (DynOPoolOptimWrapperConstructor,
                                   alpha_parameter_names)

__all__ = ['DynOPoolOptimWrapperConstructor', 'alpha_parameter_names']
