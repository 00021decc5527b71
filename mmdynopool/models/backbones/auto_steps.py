"""Find the resizing steps of any built backbone, by rule.

The rules read the built modules and one probe forward (:mod:`.trace`):

* **Residual downsampling blocks.** When a block (a module that ran once,
  whose input and output sizes are those of a strided layer inside it) holds
  more than one strided layer on that same input (a main path and its
  shortcut, a conv and a pool that are concatenated), the DynOPool goes
  *before* the block and all of them get stride 1: both paths see one
  resized input, so they stay the same size whatever the ratio.
* **Strided convolutions** whose stride-1 version keeps the size (``2p = d
  (k - 1)``): stride 1 and a DynOPool at ``1/stride`` *after* them, past
  the norm and activation layers that directly consume their output (so
  pretrained norm statistics still see un-pooled convolution outputs).
* **Patch embeddings** (non-overlapping patch convolutions, kernel =
  stride, of at most 4x4): stride 1 with ``padding='same'`` and a DynOPool
  after them, at their stride. (A ViT's 16x16 one would cost 256 times its
  MACs at stride 1: it is left as it is, with that reason.)
* **Patch merging** on tokens (Swin's ``PatchMerging``): stride 1 and a
  DynOPool on the merged map (:mod:`.token_merging`).
* **Pools**: a stride-``s`` max / average pool only resizes; a DynOPool
  (itself a pool with a learned size) takes its place.
* **Upsamplers** (``nn.Upsample`` with a scale factor > 1): replaced by a
  DynOPool with ``r = scale``.

A layer that cannot be converted is reported with the reason instead:
it did not run, it runs more than once per forward (shared), a transposed
convolution, a stride-1 version that changes the size, ...
"""
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd
from torch.nn.modules.instancenorm import _InstanceNorm
from torch.nn.modules.pooling import _AvgPoolNd, _MaxPoolNd

from .surgery import (CONTAINERS, ResizeStep, is_patch_conv,
                      keeps_size_at_stride_one, stride_of, strided_layers)
from .token_merging import is_patch_merging
from .trace import Call, Trace

# Layers that may sit between a strided convolution and its DynOPool: they
# act per pixel, so moving the resize past them keeps every size.
PER_PIXEL_TYPES = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.ReLU,
                   nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU,
                   nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid)
PER_PIXEL_NAMES = ('HSwish', 'HSigmoid', 'Swish')
# A patch convolution (kernel = stride) run at stride 1 costs stride_h *
# stride_w times its MACs: 16 (Swin's, PVT's 4x4) is the most converted.
MAX_PATCH_AREA = 16
# Modules that run their layers one after the other, like a container.
SEQUENCE_MODULES = ('ConvModule', 'DepthwiseSeparableConvModule')


@dataclass
class FoundSteps:
    """The steps found in a backbone, and the layers that were not.

    Args:
        steps (OrderedDict): ``{step name: ResizeStep}`` in forward order.
        skipped (OrderedDict): ``{layer name: reason}`` of resizing layers
            left as they are.
        members (dict): ``{step name: [strided layer names]}`` it covers.
    """
    steps: 'OrderedDict[str, ResizeStep]'
    skipped: 'OrderedDict[str, str]'
    members: Dict[str, List[str]]


def is_per_pixel(module: nn.Module) -> bool:
    return isinstance(module, PER_PIXEL_TYPES) or \
        type(module).__name__ in PER_PIXEL_NAMES


def ancestors(name: str) -> List[str]:
    """``'a.b.c'`` -> ``['a.b', 'a']`` (the root is never a host)."""
    parts = name.split('.')
    return ['.'.join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def conv_reason(conv: nn.Module) -> Optional[str]:
    """Why a strided convolution cannot take a DynOPool, or None."""
    if isinstance(conv, _ConvTransposeNd):
        return ('a transposed convolution: at stride 1 it would not '
                'upsample, and its kernel / padding change the size')
    if not isinstance(conv, nn.Conv2d):
        return f'a {type(conv).__name__}: only 2-d layers are converted'
    if is_patch_conv(conv) and math.prod(stride_of(conv)) > MAX_PATCH_AREA:
        return (f'a {conv.kernel_size[0]}x{conv.kernel_size[1]} patch '
                'embedding: at stride 1 it would cost '
                f'{math.prod(stride_of(conv))} times its MACs (the rule '
                f'converts patches of at most {MAX_PATCH_AREA} pixels)')
    if keeps_size_at_stride_one(conv) or is_patch_conv(conv):
        return None
    if type(conv).__name__ == 'Conv2dAdaptivePadding':
        return None  # pads 'same' at any stride
    return (f'at stride 1 this convolution (kernel {conv.kernel_size}, '
            f'padding {conv.padding}, dilation {conv.dilation}) would change '
            'the feature size')


def layer_reason(layer: nn.Module) -> Optional[str]:
    if isinstance(layer, _ConvNd):
        return conv_reason(layer)
    if getattr(layer, 'return_indices', False):
        return 'a pool returning indices (an unpooling layer needs them)'
    return None


def find_block(name: str, call: Call, trace: Trace,
               backbone: nn.Module) -> Optional[Tuple[str, List[str]]]:
    """The smallest block around the strided layer ``name`` that holds
    another strided layer on the same input (see the module docstring), as
    ``(block name, its strided layers)``; None if there is none."""
    for block in ancestors(name):
        block_call = trace.only_call(block)
        if block_call is None:
            continue  # a container that is only iterated, or shared
        if block_call.in_size != call.in_size or \
                block_call.out_size != call.out_size:
            return None  # the block resizes more than this layer does
        members = [
            n for n, _ in strided_layers(
                backbone.get_submodule(block), prefix=block)
            if trace.count(n) > 0
        ]
        if len(members) < 2:
            continue
        if any(trace.only_call(n) is None
               or trace.only_call(n).in_size != call.in_size for n in members):
            return None
        return block, members
    return None


def in_one_sequence(backbone: nn.Module, first: str, second: str) -> bool:
    """Whether two layers are siblings in a container or a ``ConvModule``:
    nothing else runs between them. (Elsewhere a forward may read the size
    in between, as MSCAN's patch embedding does after its convolution.)"""
    parent = first.rpartition('.')[0]
    if second.rpartition('.')[0] != parent:
        return False
    module = backbone.get_submodule(parent) if parent else backbone
    return isinstance(module, CONTAINERS) or \
        type(module).__name__ in SEQUENCE_MODULES


def per_pixel_tail(backbone: nn.Module, call: Call, trace: Trace) -> str:
    """The last of the per-pixel layers that directly consume ``call``'s
    output (e.g. the BN and ReLU after a convolution), or its own name."""
    leaves = {n for n, m in backbone.named_modules() if not list(m.children())}
    host = call.name
    while True:
        consumers = [c for c in trace.consumers(call) if c.name in leaves]
        if not consumers:
            return host
        nxt = consumers[0]
        # An in-place layer returns its input: later readers of that
        # tensor read its output, so it is still the only consumer.
        only = len(consumers) == 1 or nxt.out_id == call.out_id
        if not only or not is_per_pixel(backbone.get_submodule(nxt.name)) \
                or trace.count(nxt.name) != 1 \
                or nxt.out_size != call.out_size \
                or not in_one_sequence(backbone, call.name, nxt.name):
            return host
        call, host = nxt, nxt.name


def upsample_scale(module: nn.Module) -> Optional[Tuple[float, float]]:
    """``(s_h, s_w)`` of an upsampler module (``nn.Upsample`` or mmseg's
    ``Upsample``) with a scale factor > 1."""
    if not (isinstance(module, nn.Upsample)
            or type(module).__name__ == 'Upsample') or \
            getattr(module, 'scale_factor', None) is None or \
            getattr(module, 'size', None) is not None:
        return None
    scale = module.scale_factor
    scale = (scale, scale) if isinstance(scale, (int, float)) else \
        tuple(scale)[:2]
    return (float(scale[0]), float(scale[1])) if max(scale) > 1 else None


def find_steps(backbone: nn.Module, trace: Trace,
               excluded: Optional[Dict[str, str]] = None) -> FoundSteps:
    """Apply the rules of the module docstring to ``backbone``.

    Args:
        backbone (nn.Module): The built, unconverted backbone.
        trace (Trace): Its probe forward.
        excluded (dict, optional): ``{name prefix: reason}`` of layers to
            leave alone (e.g. size followers of a multi-branch network).
    """
    excluded = excluded or {}
    found, skipped, members = {}, OrderedDict(), {}
    claimed = set()

    def excluded_reason(name):
        for prefix, reason in excluded.items():
            if name == prefix or name.startswith(prefix + '.'):
                return reason
        return None

    candidates = [(n, m) for n, m in strided_layers(backbone) if n] + [
        (n, m) for n, m in backbone.named_modules() if upsample_scale(m)
    ]
    candidates += [(n, m) for n, m in backbone.named_modules()
                   if is_patch_merging(m)]
    for name, layer in candidates:
        if name in claimed:
            continue
        reason = excluded_reason(name)
        count = trace.count(name)
        if reason is None and count == 0:
            reason = 'did not run in the probe forward'
        elif reason is None and count > 1:
            reason = (f'runs {count} times per forward (a shared layer); '
                      'one DynOPool cannot serve every call')
        if reason is not None:
            skipped[name] = reason
            continue
        call = trace.only_call(name)
        if is_patch_merging(layer):
            found[name] = (call.order, ResizeStep(host=name,
                                                  position='tokens'))
            members[name] = [name]
            continue
        scale = upsample_scale(layer)
        if scale is not None:
            found[name] = (call.order, ResizeStep(
                host=name, position='replace', init_ratio=scale))
            members[name] = [name]
            continue
        block = find_block(name, call, trace, backbone)
        if block is not None:
            block_name, block_members = block
            reasons = [(n, layer_reason(backbone.get_submodule(n)))
                       for n in block_members]
            reasons = [f'{n}: {r}' for n, r in reasons if r]
            strides = {stride_of(backbone.get_submodule(n))
                       for n in block_members}
            if isinstance(backbone.get_submodule(block_name), CONTAINERS):
                reasons.append(f'{block_name} is a container, which cannot '
                               'resize the input of all its paths')
            if len(strides) > 1:
                reasons.append(f'its strided layers disagree: {strides}')
            claimed.update(block_members)
            if reasons:
                for n in block_members:
                    skipped[n] = (f'in block {block_name} (its strided '
                                  'layers read the same input), which '
                                  'cannot be converted: ' + '; '.join(reasons))
                continue
            found[block_name] = (trace.only_call(block_name).order,
                                 ResizeStep(host=block_name,
                                            position='before',
                                            same_padding=True))
            members[block_name] = block_members
            continue
        reason = layer_reason(layer)
        if reason is not None:
            skipped[name] = reason
            continue
        if isinstance(layer, (_MaxPoolNd, _AvgPoolNd)):
            step = ResizeStep(host=name, position='replace')
        else:
            step = ResizeStep(
                host=per_pixel_tail(backbone, call, trace),
                position='after',
                scope=name,
                same_padding=True)
        found[name] = (call.order, step)
        members[name] = [name]
    ordered = sorted(found.items(), key=lambda item: item[1][0])
    return FoundSteps(
        OrderedDict((name, step) for name, (_, step) in ordered), skipped,
        members)
