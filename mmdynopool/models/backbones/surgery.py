"""Model surgery: turn the fixed resizing steps of a built network into
DynOPool layers, without renaming any of its parameters.

A resizing step (a stride-2 convolution, the stem max-pool, a residual block
whose first convolution and shortcut both have stride 2) becomes a stride-1
step plus a :class:`~mmdynopool.ops.DynOPool` initialised to the step's scale
(``1 / stride``). The DynOPool is attached to a *host* module:

* ``'before'``: as ``host.dynopool``, applied to the host's first input by a
  forward pre-hook. Used for residual blocks: the main path and the shortcut
  both see the one resized input, so they stay consistent.
* ``'after'``: as ``host.dynopool``, applied to the host's output by a
  forward hook (e.g. a stem convolution that now runs at full resolution).
* ``'replace'``: the host itself (a pooling layer that only resizes) is
  replaced by the DynOPool.
* ``'tokens'``: the host is a token patch merging (Swin's
  ``PatchMerging``); see :mod:`.token_merging`.

Hooks rather than wrapper modules keep every parameter of the original
network under its original name, so pretrained checkpoints of the parent
backbone load unchanged; the only new keys are the DynOPool ``alpha``\\ s.
The hooks look the layer up by name (``host.dynopool``) at every call, so
swapping it for its deploy form (``DynOPool.to_static()``) keeps working.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch.nn as nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import _AvgPoolNd, _MaxPoolNd

from mmdynopool.ops import DynOPool

POSITIONS = ('before', 'after', 'replace', 'tokens')
DYNOPOOL_CFG_KEYS = ('aggregation', 'ratio_range', 'min_size')
# Names under which hosts keep their DynOPool; the hooks look it up here.
ATTACHED_NAME = 'dynopool'
# Containers run their children in order: a DynOPool child would be run too.
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)

Ratio = Union[float, Tuple[float, float]]


@dataclass
class ResizeStep:
    """One resizing step of a network, described on the built modules.

    Args:
        host (str): Dotted name of the module the DynOPool is attached to.
        position (str): ``'before'``, ``'after'`` or ``'replace'`` (see the
            module docstring).
        scope (str, optional): Dotted name of the module whose strided
            convolutions / pools make up the step: they get stride 1 (pools
            whose only job is the stride are replaced by ``nn.Identity``).
            Default: ``host``.
        init_ratio (float | tuple, optional): Initial ``(r_h, r_w)``.
            Default: ``1 / stride`` of the step (1.0 where nothing is
            strided, e.g. a dilated stage that may learn to go down or up).
        same_padding (bool): Let a non-overlapping patch convolution (kernel
            = stride, no padding, e.g. a ViT/Swin patch embedding) run at
            stride 1 with ``padding='same'``, so that it keeps the size and
            the DynOPool after it sets the resolution. Default: False (such
            a convolution is refused: at stride 1 it shrinks the map).
    """
    host: str
    position: str = 'before'
    scope: Optional[str] = None
    init_ratio: Optional[Ratio] = None
    same_padding: bool = False


def check_dynopool_cfg(dynopool_cfg: Optional[dict]) -> dict:
    """The DynOPool options shared by all layers of a backbone."""
    if dynopool_cfg is None:
        return {}
    if not isinstance(dynopool_cfg, dict):
        raise TypeError('dynopool_cfg must be a dict of DynOPool options '
                        f'{DYNOPOOL_CFG_KEYS}, got {type(dynopool_cfg)}')
    unknown = sorted(set(dynopool_cfg) - set(DYNOPOOL_CFG_KEYS))
    if unknown:
        raise ValueError(f'dynopool_cfg has unknown keys {unknown}; allowed '
                         f'are {DYNOPOOL_CFG_KEYS} (init_ratio is set per '
                         'step from the replaced stride)')
    return dict(dynopool_cfg)


def stride_of(module: nn.Module) -> Tuple[int, int]:
    """The ``(s_h, s_w)`` stride of a convolution or pooling layer."""
    stride = module.stride
    if stride is None:  # pooling layers: stride defaults to kernel_size
        stride = module.kernel_size
    if isinstance(stride, int):
        return stride, stride
    stride = tuple(stride)
    return (stride[0], stride[0]) if len(stride) == 1 else stride[:2]


def strided_layers(module: nn.Module,
                   prefix: str = '') -> List[Tuple[str, nn.Module]]:
    """``(name, layer)`` of every convolution / pool in ``module`` (itself
    included) that has a stride larger than 1."""
    found = []
    for name, layer in module.named_modules(prefix=prefix):
        if isinstance(layer, (_ConvNd, _MaxPoolNd, _AvgPoolNd)) and \
                max(stride_of(layer)) > 1:
            found.append((name, layer))
    return found


def _as_pair(value) -> Tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)[:2]


def keeps_size_at_stride_one(conv: _ConvNd) -> bool:
    """Whether the convolution's padding keeps the size at stride 1."""
    if type(conv).__name__ == 'Conv2dAdaptivePadding':
        return True  # mmcv's TF-style padding is 'same' at stride 1
    if isinstance(conv.padding, str):
        return conv.padding == 'same'
    kernel, padding = _as_pair(conv.kernel_size), _as_pair(conv.padding)
    dilation = _as_pair(conv.dilation)
    return all(2 * p == d * (k - 1)
               for k, p, d in zip(kernel, padding, dilation))


def is_patch_conv(conv: _ConvNd) -> bool:
    """A non-overlapping patch convolution: kernel = stride > 1, padding 0,
    no dilation (ViT / Swin / PVT patch embeddings)."""
    return (not isinstance(conv.padding, str)
            and _as_pair(conv.kernel_size) == _as_pair(conv.stride)
            and max(_as_pair(conv.stride)) > 1
            and _as_pair(conv.padding) == (0, 0)
            and _as_pair(conv.dilation) == (1, 1)
            and not isinstance(conv, nn.modules.conv._ConvTransposeNd))


def make_conv_stride_one(name: str, conv: _ConvNd,
                         same_padding: bool = False) -> None:
    """Set a convolution's stride to 1; its padding must keep the size (or,
    with ``same_padding``, a patch convolution gets ``padding='same'``)."""
    kernel, padding = _as_pair(conv.kernel_size), _as_pair(conv.padding)
    dilation = _as_pair(conv.dilation)
    if same_padding and is_patch_conv(conv):
        # 'same' pads (k - 1) zeros, the extra one at the bottom / right.
        conv.padding = 'same'
    elif not keeps_size_at_stride_one(conv):
        raise ValueError(
            f'{name}: at stride 1 this convolution (kernel {kernel}, padding '
            f'{conv.padding}, dilation {dilation}) changes the feature size, '
            'so a DynOPool cannot take over its stride; leave this step out '
            'of dynopool_steps')
    conv.stride = (1, ) * len(_as_pair(conv.stride))


def remove_stride(root: nn.Module,
                  scope: str,
                  same_padding: bool = False) -> Tuple[int, int]:
    """Make every strided layer under ``root.<scope>`` stride 1 and return
    the common stride ``(s_h, s_w)`` they had ((1, 1) if none)."""
    scope_module = root.get_submodule(scope)
    layers = strided_layers(scope_module, prefix=scope)
    strides = {stride_of(layer) for _, layer in layers}
    if len(strides) > 1:
        raise ValueError(
            f'{scope}: its strided layers disagree on the stride '
            f'({[(n, stride_of(m)) for n, m in layers]}), so one DynOPool '
            'cannot replace them; leave this step out of dynopool_steps')
    for name, layer in layers:
        if isinstance(layer, _ConvNd):
            make_conv_stride_one(name, layer, same_padding)
        else:
            # A pool in a shortcut (ResNetV1d's avg_down) only resizes: the
            # DynOPool before the block does that now.
            set_submodule(root, name, nn.Identity())
    return strides.pop() if strides else (1, 1)


def set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    """Replace ``root.<name>`` by ``module`` (same name, same place)."""
    parent_name, _, child = name.rpartition('.')
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def _resize_input(host: nn.Module, args: tuple) -> tuple:
    return (getattr(host, ATTACHED_NAME)(args[0]), ) + tuple(args[1:])


def _resize_output(host: nn.Module, args: tuple, output):
    return getattr(host, ATTACHED_NAME)(output)


def attach_dynopool(root: nn.Module, host: str, dynopool: nn.Module,
                    position: str) -> str:
    """Attach ``dynopool`` to ``root.<host>`` and return its dotted name."""
    if position not in POSITIONS:
        raise ValueError(f'position must be one of {POSITIONS}, got '
                         f'{position!r}')
    if position == 'replace':
        set_submodule(root, host, dynopool)
        return host
    host_module = root.get_submodule(host)
    if isinstance(host_module, CONTAINERS):
        raise TypeError(
            f'{host} is a {type(host_module).__name__}, which would run an '
            'attached DynOPool as one of its layers; attach it to a layer '
            'inside it instead')
    if hasattr(host_module, ATTACHED_NAME):
        raise ValueError(f'{host} already has a DynOPool attached')
    host_module.add_module(ATTACHED_NAME, dynopool)
    if position == 'before':
        host_module.register_forward_pre_hook(_resize_input)
    else:
        host_module.register_forward_hook(_resize_output)
    return f'{host}.{ATTACHED_NAME}'


def apply_resize_step(root: nn.Module, step: ResizeStep,
                      dynopool_cfg: Optional[dict] = None) -> str:
    """Replace one resizing step of ``root`` by stride 1 plus a DynOPool;
    returns the DynOPool's dotted name in ``root``."""
    scope = step.host if step.scope is None else step.scope
    if step.position == 'tokens':
        from .token_merging import convert_patch_merging, merging_stride
        stride = merging_stride(root.get_submodule(step.host))
        init_ratio = step.init_ratio or (1.0 / stride[0], 1.0 / stride[1])
        return convert_patch_merging(
            root, step.host,
            DynOPool(init_ratio=init_ratio,
                     **check_dynopool_cfg(dynopool_cfg)))
    layers = strided_layers(root.get_submodule(scope), prefix=scope)
    stride = stride_of(layers[0][1]) if layers else (1, 1)
    init_ratio = step.init_ratio
    if init_ratio is None:
        init_ratio = (1.0 / stride[0], 1.0 / stride[1])
    # Built first: a bad option fails before any layer is changed.
    dynopool = DynOPool(
        init_ratio=init_ratio, **check_dynopool_cfg(dynopool_cfg))
    if step.position != 'replace':
        # ('replace': the host is the strided layer itself; it goes away.)
        remove_stride(root, scope, step.same_padding)
    return attach_dynopool(root, step.host, dynopool, step.position)


def select_steps(available: Dict[str, ResizeStep], default: Sequence[str],
                 dynopool_steps: Optional[Sequence[str]]) -> List[str]:
    """The step names to replace: ``default`` when ``dynopool_steps`` is
    None, else ``dynopool_steps`` validated against ``available``."""
    if dynopool_steps is None:
        return list(default)
    if isinstance(dynopool_steps, str) or not isinstance(
            dynopool_steps, (list, tuple)):
        raise TypeError('dynopool_steps must be a list of step names or None '
                        f'(all resizing steps), got {dynopool_steps!r}')
    unknown = [name for name in dynopool_steps if name not in available]
    if unknown:
        raise ValueError(f'dynopool_steps has unknown steps {unknown}; this '
                         f'backbone has {list(available)}')
    if len(set(dynopool_steps)) != len(dynopool_steps):
        raise ValueError(f'dynopool_steps lists a step twice: '
                         f'{list(dynopool_steps)}')
    # Keep the network's order so the DynOPools are listed front to back.
    return [name for name in available if name in dynopool_steps]


def apply_resize_steps(root: nn.Module, available: Dict[str, ResizeStep],
                       default: Sequence[str],
                       dynopool_steps: Optional[Sequence[str]] = None,
                       dynopool_cfg: Optional[dict] = None) -> Dict[str, str]:
    """Replace the selected steps of ``root``; returns ``{step name:
    DynOPool name}`` in network order."""
    dynopool_cfg = check_dynopool_cfg(dynopool_cfg)
    return {
        name: apply_resize_step(root, available[name], dynopool_cfg)
        for name in select_steps(available, default, dynopool_steps)
    }
