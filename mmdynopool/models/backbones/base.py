"""What the named DynOPool backbones share: naming their resizing steps
and handing the selected ones to the one surgery,
:func:`~mmdynopool.models.backbones.convert.convert_backbone` (the same that
``DynOPoolBackbone`` uses, with its build-time probe checks)."""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import torch.nn as nn

from .convert import convert_backbone
from .surgery import ResizeStep, select_steps


class DynOPoolBackboneMixin:
    """Mixin for a subclass of an mmseg backbone whose resizing steps are
    replaced by DynOPool layers.

    The subclass calls the parent ``__init__`` unchanged (so ``pretrained``,
    ``init_cfg`` and every state-dict key keep working) and then
    :meth:`insert_dynopools`. It describes its steps in :meth:`resize_steps`
    and names the ones replaced by default in :meth:`default_steps`: a
    family preset of named steps (``'stem'``, ``'layer2'``, ...) where the
    rules of ``DynOPoolBackbone``'s ``steps='auto'`` would place them
    differently (before an inverted-residual block rather than after its
    depthwise convolution, at a dilated stage that does not stride).
    """

    def resize_steps(self) -> Dict[str, ResizeStep]:
        """All steps that may get a DynOPool, by name, in network order."""
        raise NotImplementedError

    def default_steps(self) -> List[str]:
        """The steps replaced when ``dynopool_steps`` is None: every step
        that resizes (and, for dilated networks, every stage that traded its
        stride for a larger dilation)."""
        raise NotImplementedError

    def insert_dynopools(self,
                         dynopool_cfg: Optional[dict] = None,
                         dynopool_steps: Optional[Sequence[str]] = None
                         ) -> None:
        self.dynopool_cfg = dynopool_cfg
        available = self.resize_steps()
        names = select_steps(available, self.default_steps(), dynopool_steps)
        # Sets dynopool_names: {step name: dotted name of its DynOPool}.
        convert_backbone(self,
                         OrderedDict((name, available[name])
                                     for name in names), dynopool_cfg)

    @property
    def dynopools(self) -> 'OrderedDict[str, nn.Module]':
        """``{step name: DynOPool}`` in network order (looked up by name, so
        a layer swapped for its static deploy form is returned as such)."""
        return OrderedDict((step, self.get_submodule(name))
                           for step, name in self.dynopool_names.items())


def stage_resizes(strides: Sequence[int], dilations: Sequence[int],
                  index: int) -> bool:
    """Whether stage ``index`` resizes: it has a stride, or it is a dilated
    stage that replaced one (its dilation grew over the previous stage's,
    as in mmseg's ``-d8`` / ``-d16`` backbones)."""
    previous = dilations[index - 1] if index > 0 else 1
    return strides[index] > 1 or dilations[index] > previous
