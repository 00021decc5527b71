"""ResNets whose stage resolutions are learned by DynOPool layers."""
from typing import Dict, List, Optional, Sequence

from mmengine.registry import MODELS
from mmseg.models.backbones import ResNet, ResNetV1c, ResNetV1d

from .base import DynOPoolBackboneMixin, stage_resizes
from .surgery import ResizeStep


@MODELS.register_module()
class DynOPoolResNet(DynOPoolBackboneMixin, ResNet):
    """mmseg's ResNet with its resizing steps replaced by DynOPool layers.

    The network is built by :class:`mmseg.models.backbones.ResNet` with the
    same arguments, then each selected resizing step becomes a stride-1 step
    plus a DynOPool initialised to the step's scale:

    - ``'stem'``: the stem's stride-2 convolution runs at stride 1; a
      DynOPool (``r = 0.5``) follows the stem's first activation (so the
      pretrained BN statistics still see un-pooled conv outputs).
    - ``'maxpool'``: the stem max-pool is replaced by a DynOPool
      (``r = 0.5``).
    - ``'layer1'`` ... ``'layer4'``: a DynOPool resizes the input of the
      stage's first block, whose strided 3x3 (or 1x1 for ``style='caffe'``)
      convolution and shortcut (convolution, or ``avg_down`` pool) get stride
      1, so main path and shortcut see the same resized input. A stage with
      stride ``s`` starts at ``r = 1/s``. A stage that mmseg's dilated
      (``-d8``) recipes keep at stride 1 with a larger dilation starts at
      ``r = 1`` and may learn to go down or up (its dilation is kept). Naming
      any other stage in ``dynopool_steps`` also gives it a DynOPool at
      ``r = 1``.

    Parameter names are those of the parent ResNet (checkpoints of it load
    with ``strict=False``; the only extra keys are the DynOPool ``alpha``\\
    s, e.g. ``layer2.0.dynopool.alpha``). DynOPools inside the modules of a
    frozen stage (``frozen_stages``) are frozen with it. The ``strides``
    attribute keeps describing the parent recipe.

    Args:
        depth (int): Depth of resnet, from {18, 34, 50, 101, 152}.
        dynopool_cfg (dict, optional): Options of every DynOPool:
            ``aggregation``, ``ratio_range``, ``min_size`` (see
            :class:`~mmdynopool.ops.DynOPool`). Default: None (its defaults).
        dynopool_steps (Sequence[str], optional): Which steps to replace,
            from ``'stem'``, ``'maxpool'``, ``'layer1'`` ... Default: None,
            every step that resizes (stem, max-pool, strided stages and
            dilated stages).
        **kwargs: Arguments of :class:`mmseg.models.backbones.ResNet`
            (``pretrained``/``init_cfg`` included).

    Example:
        >>> import torch
        >>> self = DynOPoolResNet(depth=18, dynopool_cfg=dict(
        ...     aggregation='max'))
        >>> self.eval()
        >>> self.dynopools['layer2'].alpha.data.fill_(1 / 0.75)
        >>> level_outputs = self.forward(torch.rand(1, 3, 64, 64))
        >>> [tuple(out.shape[2:]) for out in level_outputs]
        [(16, 16), (12, 12), (6, 6), (3, 3)]
    """

    def __init__(self,
                 depth: int,
                 dynopool_cfg: Optional[dict] = None,
                 dynopool_steps: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        super().__init__(depth=depth, **kwargs)
        self.insert_dynopools(dynopool_cfg, dynopool_steps)
        # The parent froze its stages before the DynOPools existed.
        self._freeze_stages()

    def resize_steps(self) -> Dict[str, ResizeStep]:
        if self.deep_stem:
            stem = ResizeStep(host='stem.2', position='after', scope='stem.0')
        else:
            stem = ResizeStep(host='relu', position='after', scope='conv1')
        steps = dict(
            stem=stem, maxpool=ResizeStep(host='maxpool', position='replace'))
        for layer_name in self.res_layers:
            steps[layer_name] = ResizeStep(host=f'{layer_name}.0')
        return steps

    def default_steps(self) -> List[str]:
        return ['stem', 'maxpool'] + [
            name for i, name in enumerate(self.res_layers)
            if stage_resizes(self.strides, self.dilations, i)
        ]


@MODELS.register_module()
class DynOPoolResNetV1c(DynOPoolResNet, ResNetV1c):
    """:class:`DynOPoolResNet` on mmseg's ResNetV1c (deep stem of three 3x3
    convolutions): the ``'stem'`` step is the first, stride-2 one.

    Args: as :class:`DynOPoolResNet`.
    """


@MODELS.register_module()
class DynOPoolResNetV1d(DynOPoolResNet, ResNetV1d):
    """:class:`DynOPoolResNet` on mmseg's ResNetV1d (deep stem, ``avg_down``
    shortcuts): a replaced stage's shortcut pool becomes ``nn.Identity``,
    the DynOPool before the block resizes for both paths.

    Args: as :class:`DynOPoolResNet`.
    """
