"""``DynOPoolBackbone``: any mmseg backbone, its resizing steps learned."""
import copy
from typing import Optional, Sequence

import torch.nn as nn
from mmseg.registry import MODELS

from .convert import Steps, convert_backbone


def build_dynopool_backbone(backbone: dict,
                            steps: Steps = 'auto',
                            dynopool_cfg: Optional[dict] = None,
                            probe_size: Optional[Sequence[int]] = None,
                            pretrained: Optional[str] = None,
                            init_cfg: Optional[dict] = None) -> nn.Module:
    """Build an mmseg backbone and replace its resizing steps by DynOPools.

    Registered as ``DynOPoolBackbone``: wrap a recipe's backbone dict in one
    line, e.g. ``model.backbone = dict(type='DynOPoolBackbone',
    backbone=dict(type='HRNet', ...))``. What is returned is the mmseg
    backbone itself (an ``HRNet``, a ``SwinTransformer``, ...), so every
    parameter keeps its name: ``pretrained`` / ``init_cfg`` and segmentor
    checkpoints of the plain model load, the only new keys are the DynOPool
    ``alpha``\\ s. The steps, rules and build-time checks are those of
    :func:`~mmdynopool.models.backbones.convert.convert_backbone`; what was
    converted, skipped (with the reason) and followed is logged and kept in
    ``dynopool_names``, ``dynopool_skipped`` and ``dynopool_followers``.

    Args:
        backbone (dict): Config of any backbone in mmseg's registry.
        steps (str | list[str] | dict): ``'auto'`` (default: every step
            found by rule), a list of the found steps' names, or
            ``{name: dict(host=..., position=..., scope=..., init_ratio=...)}``
            (:class:`~mmdynopool.models.backbones.ResizeStep` fields).
        dynopool_cfg (dict, optional): Options of every DynOPool:
            ``aggregation``, ``ratio_range``, ``min_size``. Default: None.
        probe_size (tuple[int], optional): ``(H, W)`` of the build-time
            probe. Default: the first of 64, 128, 256 that runs.
        pretrained (str, optional): Handed to the wrapped backbone (mmseg's
            ``EncoderDecoder`` passes its ``pretrained`` to the backbone
            config, which here is this wrapper). Default: None.
        init_cfg (dict, optional): Handed to the wrapped backbone likewise.

    Returns:
        nn.Module: the converted backbone.

    Example:
        >>> import mmdynopool  # noqa: F401 (registers DynOPoolBackbone)
        >>> from mmseg.registry import MODELS
        >>> net = MODELS.build(dict(type='DynOPoolBackbone', backbone=dict(
        ...     type='MobileNetV3', arch='small', out_indices=(0, 1, 12))))
        >>> list(net.dynopool_names)[:2]
        ['layer0.conv', 'layer1.depthwise_conv.conv']
    """
    if not isinstance(backbone, dict) or 'type' not in backbone:
        raise TypeError('DynOPoolBackbone: backbone must be the config dict '
                        "of an mmseg backbone, e.g. dict(type='HRNet', ...),"
                        f' got {backbone!r}')
    if backbone['type'] == 'DynOPoolBackbone':
        raise ValueError('DynOPoolBackbone: backbone is itself a '
                         'DynOPoolBackbone; wrap the plain backbone once')
    cfg = copy.deepcopy(backbone)
    for key, value in (('pretrained', pretrained), ('init_cfg', init_cfg)):
        if value is not None:
            if cfg.get(key) is not None:
                raise ValueError(
                    f'DynOPoolBackbone: {key} is given both to the wrapper '
                    'and to its backbone; give it to one of them')
            cfg[key] = value
    return convert_backbone(
        MODELS.build(copy.deepcopy(cfg)),
        steps,
        dynopool_cfg,
        probe_size,
        rebuild=lambda: MODELS.build(copy.deepcopy(cfg)))


MODELS.register_module(name='DynOPoolBackbone',
                       module=build_dynopool_backbone)
