"""Let torch>=2.6 load mmengine's own checkpoints with ``weights_only=True``.

mmengine 0.10.7 calls ``torch.load(filename, map_location=...)`` without
``weights_only``; since torch 2.6 that means ``weights_only=True``, and the
safe unpickler refuses what mmengine itself stores in ``meta``: the message
hub's ``HistoryBuffer``, the numpy arrays and scalars inside it, and the
``getattr(HistoryBuffer, 'mean')``-style references to its statistics
methods. Rather than turning the safe loader off (``weights_only=False``
would run arbitrary pickled code), we allow-list exactly those types with
``torch.serialization.add_safe_globals``. ``getattr`` is *not* allowed as
such: the name is bound to :func:`history_buffer_getattr`, which only
resolves ``HistoryBuffer``'s registered statistics methods. Checkpoints that
hold anything else are still refused by torch.
"""
import pickle
import re
from typing import Any, List

import numpy as np
import torch


def history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to ``HistoryBuffer``'s statistics methods."""
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = {'min', 'max', 'mean', 'current',
               *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'mmdynopool refuses getattr({obj!r}, {name!r}) while loading a '
        'checkpoint: only HistoryBuffer statistics methods are allowed. '
        'Load untrusted files with care.')


def numpy_pickle_globals() -> List[Any]:
    """numpy's pickle hooks and the dtype classes of common scalars."""
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [
        type(np.dtype(name)) for name in ('float64', 'float32', 'float16',
                                          'int64', 'int32', 'uint8', 'bool')
    ]
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtype_classes]


def named_safe_globals_supported() -> bool:
    """Whether ``add_safe_globals`` takes ``(callable, name)`` pairs.

    torch 2.6 added the pairs (and made ``weights_only=True`` the default).
    torch 2.4/2.5 store a pair as it is and then fail on *every*
    ``weights_only=True`` load (a tuple has no ``__module__``), which would
    break other libraries of a user's environment.
    """
    version = tuple(int(part) for part in re.findall(
        r'\d+', torch.__version__.split('+')[0])[:2])
    return version >= (2, 6)


def allow_mmengine_checkpoints() -> None:
    """Allow-list mmengine's checkpoint contents for ``torch.load``."""
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:  # torch < 2.4 loads them unrestricted
        return
    from mmengine.logging.history_buffer import HistoryBuffer
    safe = [HistoryBuffer, *numpy_pickle_globals()]
    if named_safe_globals_supported():
        safe += [
            (history_buffer_getattr, 'builtins.getattr'),
            (history_buffer_getattr, '__builtin__.getattr'),
        ]
    add_safe_globals(safe)
