"""Size followers: keep merged paths the same size once ratios are learned.

Where two paths meet (added, multiplied or concatenated), a learned ratio on
one path would make the sizes disagree and the forward fail. A *follower*
resizes one path to the size of the other: it is a no-op at the initial
ratios (the sizes agree, nothing is computed) and bilinear resizing, as in
mmseg's own fuse layers, once they differ. Followers are installed with
forward hooks on the existing modules, so no parameter is renamed:

* **merge modules**: a module called with two or more 4-d tensors of equal
  size in the probe (BiSeNetV1's feature fusion, PIDNet's fusion modules,
  ...): every tensor after the first is resized to the first's size;
* **HRNet**: in each ``HRModule`` the downsampling fuse layers (branch
  ``j`` to a lower-resolution branch ``i``) follow branch ``i``; they keep
  their strides, and the branch resolutions are learned by the DynOPools
  of the transitions;
* **UNet**: each decoder block's upsampler follows the skip connection;
* **BiSeNetV2**: the detail branch's downsampler in the bilateral guided
  aggregation follows the semantic branch's size.

:func:`follower_exclusions` names the layers that followers govern, so the
step finder leaves them alone (with the reason).
"""
import functools
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from torch import Tensor

from mmdynopool.ops import DynOPool
from .trace import Trace


class SizeMemo:
    """The target size(s) seen by a pre-hook, read by a follower hook."""

    def __init__(self) -> None:
        self.sizes: Optional[List] = None


def _exporting() -> bool:
    return torch.compiler.is_exporting() or torch.jit.is_tracing() or \
        torch.onnx.is_in_onnx_export()


def _resize_to(x, size):
    """``x`` resized (bilinearly) to ``size`` unless it already has it.

    While exporting, it always resizes (to the same size that is a no-op):
    comparing symbolic sizes would fix the exported graph to one size."""
    from mmseg.models.utils import resize
    if not isinstance(x, Tensor) or x.dim() != 4:
        return x
    if not _exporting() and tuple(x.shape[2:]) == tuple(size):
        return x
    return resize(x, size=tuple(size), mode='bilinear', align_corners=False)


def _align_inputs(module, args):
    """Pre-hook of a merge module: later 4-d inputs follow the first."""
    tensors = [i for i, a in enumerate(args)
               if isinstance(a, Tensor) and a.dim() == 4]
    if len(tensors) < 2:
        return None
    size = args[tensors[0]].shape[2:]
    return tuple(_resize_to(a, size) if i in tensors[1:] else a
                 for i, a in enumerate(args))


def _remember_sizes(memo: SizeMemo, module, args):
    inputs = args[0]
    inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    memo.sizes = [tuple(x.shape[2:]) for x in inputs]


def _remember_input(memo: SizeMemo, index: int, module, args):
    memo.sizes = [tuple(args[index].shape[2:])]


# Blocks with a child that follows the size of one of the block's inputs:
# class name -> (the child, the input it follows, why it is no DynOPool).
INPUT_FOLLOWERS = {
    'UpConvBlock': ('upsample', 0, 'a UNet decoder upsampler: it follows the '
                    'size of its skip connection, which the encoder '
                    'DynOPools learn'),
    'BGALayer': ('detail_down', 1, 'the BiSeNetV2 aggregation downsampler of '
                 'the detail branch: it follows the size of the semantic '
                 'branch'),
}


def _input_follower(module: nn.Module):
    """``INPUT_FOLLOWERS``' entry for ``module``'s class, or None."""
    for class_name, entry in INPUT_FOLLOWERS.items():
        if _is(module, class_name):
            return entry
    return None


def _follow(memo: SizeMemo, index: int, module, args, output):
    return _resize_to(output, memo.sizes[index])


def _is(module: nn.Module, class_name: str) -> bool:
    return any(cls.__name__ == class_name and cls.__module__.startswith(
        'mmseg.') for cls in type(module).__mro__)


def follower_exclusions(backbone: nn.Module) -> Dict[str, str]:
    """``{layer name prefix: reason}`` of the layers followers govern."""
    excluded = {}
    for name, module in backbone.named_modules():
        if _is(module, 'HRModule') and module.num_branches > 1:
            for i, row in enumerate(module.fuse_layers):
                for j in range(len(row)):
                    if j < i:
                        excluded[f'{name}.fuse_layers.{i}.{j}'] = (
                            f'an HRNet fuse downsampler (branch {j} to '
                            f'{i}): it follows the size of branch {i}, which '
                            'the transition DynOPools learn')
                    elif j > i:
                        excluded[f'{name}.fuse_layers.{i}.{j}'] = (
                            'an HRNet fuse upsampler: mmseg resizes its '
                            f'output to branch {i} anyway, so a learned '
                            'ratio would change no feature size')
        elif _input_follower(module) is not None:
            child, _, reason = _input_follower(module)
            excluded[f'{name}.{child}'] = reason
    return excluded


def merge_modules(backbone: nn.Module, trace: Trace) -> List[str]:
    """Modules called once with two or more equal-size 4-d inputs."""
    found = []
    for name, module in backbone.named_modules():
        call = trace.only_call(name)
        if call is None or isinstance(module, DynOPool):
            continue
        sizes = [s for s in call.arg_sizes if s is not None]
        if len(sizes) >= 2 and len(set(sizes)) == 1:
            found.append(name)
    # The outermost merge only: its inner layers see aligned inputs.
    return [n for n in found
            if not any(n.startswith(f'{o}.') for o in found)]


def install_followers(backbone: nn.Module, trace: Trace) -> List[str]:
    """Install every follower of the module docstring; returns the names of
    the modules they act on."""
    installed = []
    for name in merge_modules(backbone, trace):
        backbone.get_submodule(name).register_forward_pre_hook(_align_inputs)
        installed.append(name)
    for name, module in backbone.named_modules():
        if _is(module, 'HRModule') and module.num_branches > 1:
            memo = SizeMemo()
            module.register_forward_pre_hook(
                functools.partial(_remember_sizes, memo))
            for i, row in enumerate(module.fuse_layers):
                for j in range(i):
                    row[j].register_forward_hook(
                        functools.partial(_follow, memo, i))
                    installed.append(f'{name}.fuse_layers.{i}.{j}')
        elif _input_follower(module) is not None:
            child, index, _ = _input_follower(module)
            memo = SizeMemo()
            module.register_forward_pre_hook(
                functools.partial(_remember_input, memo, index))
            getattr(module, child).register_forward_hook(
                functools.partial(_follow, memo, 0))
            installed.append(f'{name}.{child}')
    return installed
