"""SegFormer's Mix Transformer whose stage resolutions are learned."""
from typing import Dict, List, Optional, Sequence

from mmengine.registry import MODELS
from mmseg.models.backbones import MixVisionTransformer

from .base import DynOPoolBackboneMixin
from .surgery import ResizeStep


@MODELS.register_module()
class DynOPoolMixVisionTransformer(DynOPoolBackboneMixin,
                                   MixVisionTransformer):
    """mmseg's MixVisionTransformer (SegFormer's MiT) with the strides of its
    overlapping patch embeddings replaced by DynOPool layers.

    The network is built by
    :class:`mmseg.models.backbones.MixVisionTransformer` with the same
    arguments; then each selected stage's patch-embedding convolution
    (stride 4 for the first stage, 2 for the others) runs at stride 1 and a
    DynOPool initialised to ``r = 1/stride`` sets the stage's resolution:

    - ``'stage1'``: the DynOPool follows the projection convolution (it sees
      the image; pooling raw pixels would throw away what the convolution
      should see). This convolution then runs at full input resolution.
    - ``'stage2'`` ... : the DynOPool resizes the patch embedding's input
      (the previous stage's feature map), so the convolution's cost is
      unchanged at the initial ratio.

    The efficient self-attention's spatial reduction (``sr_ratios``) works on
    any size and is kept. Parameter names are those of the parent (official
    MiT checkpoints load); the extra keys are the DynOPool ``alpha``\\ s,
    e.g. ``layers.1.0.dynopool.alpha``.

    Args:
        dynopool_cfg (dict, optional): Options of every DynOPool:
            ``aggregation``, ``ratio_range``, ``min_size``. Default: None.
        dynopool_steps (Sequence[str], optional): Which stages to replace,
            from ``'stage1'`` ... Default: None, every stage.
        **kwargs: Arguments of
            :class:`mmseg.models.backbones.MixVisionTransformer`.
    """

    def __init__(self,
                 dynopool_cfg: Optional[dict] = None,
                 dynopool_steps: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.insert_dynopools(dynopool_cfg, dynopool_steps)

    def resize_steps(self) -> Dict[str, ResizeStep]:
        steps = {}
        for i in range(self.num_stages):
            patch_embed = f'layers.{i}.0'
            if i == 0:
                steps['stage1'] = ResizeStep(
                    host=f'{patch_embed}.projection',
                    position='after',
                    scope=patch_embed)
            else:
                steps[f'stage{i + 1}'] = ResizeStep(host=patch_embed)
        return steps

    def default_steps(self) -> List[str]:
        return list(self.resize_steps())
