"""MobileNetV2 whose stage resolutions are learned by DynOPool layers."""
from typing import Dict, List, Optional, Sequence

from mmengine.registry import MODELS
from mmseg.models.backbones import MobileNetV2

from .base import DynOPoolBackboneMixin, stage_resizes
from .surgery import ResizeStep


@MODELS.register_module()
class DynOPoolMobileNetV2(DynOPoolBackboneMixin, MobileNetV2):
    """mmseg's MobileNetV2 with its resizing steps replaced by DynOPool
    layers.

    The network is built by :class:`mmseg.models.backbones.MobileNetV2` with
    the same arguments, then each selected step becomes a stride-1 step plus
    a DynOPool initialised to the step's scale:

    - ``'stem'``: ``conv1`` (conv-BN-ReLU6, stride 2) runs at stride 1 and is
      followed by a DynOPool (``r = 0.5``).
    - ``'layer1'`` ... ``'layer7'``: a DynOPool resizes the input of the
      layer's first inverted-residual block, whose depthwise convolution gets
      stride 1. A layer with stride ``s`` starts at ``r = 1/s``; a layer that
      mmseg's dilated (``m-v2-d8``) recipes keep at stride 1 with a larger
      dilation starts at ``r = 1`` and may learn to go down or up. Naming
      any other layer in ``dynopool_steps`` also gives it a DynOPool at
      ``r = 1``.

    The first block of a layer with a DynOPool has no identity shortcut
    (mmseg only adds one to stride-1 blocks that keep the channels, which
    the replaced blocks never were), and a DynOPool given to a layer whose
    first block has one resizes the input of both paths.

    Parameter names are those of the parent (``conv1.conv.weight``, ...);
    the extra keys are the DynOPool ``alpha``\\ s, e.g.
    ``layer2.0.dynopool.alpha``.

    Args:
        dynopool_cfg (dict, optional): Options of every DynOPool:
            ``aggregation``, ``ratio_range``, ``min_size``. Default: None.
        dynopool_steps (Sequence[str], optional): Which steps to replace,
            from ``'stem'``, ``'layer1'`` ... ``'layer7'``. Default: None,
            every step that resizes.
        **kwargs: Arguments of :class:`mmseg.models.backbones.MobileNetV2`.
    """

    def __init__(self,
                 dynopool_cfg: Optional[dict] = None,
                 dynopool_steps: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.insert_dynopools(dynopool_cfg, dynopool_steps)

    def resize_steps(self) -> Dict[str, ResizeStep]:
        steps = dict(stem=ResizeStep(host='conv1', position='after'))
        for layer_name in self.layers:
            steps[layer_name] = ResizeStep(host=f'{layer_name}.0')
        return steps

    def default_steps(self) -> List[str]:
        return ['stem'] + [
            name for i, name in enumerate(self.layers)
            if stage_resizes(self.strides, self.dilations, i)
        ]
