"""Looking into hook arguments and outputs."""
from typing import Any, Optional

from torch import Tensor


def first_tensor(values: Any) -> Optional[Tensor]:
    """The first tensor in a (nested) tuple / list / dict, as forward hooks
    receive their module's inputs and outputs; None if there is none."""
    if isinstance(values, Tensor):
        return values
    if isinstance(values, dict):
        values = list(values.values())
    if isinstance(values, (list, tuple)):
        for value in values:
            found = first_tensor(value)
            if found is not None:
                return found
    return None
