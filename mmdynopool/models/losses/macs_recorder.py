"""Record a model's multiply-accumulates per forward, differentiably.

The paper's compute loss is

    L_GMACs = sum_l (H_hat_l * W_hat_l) / (H_l(0) * W_l(0)) * GMACs_l(0),

i.e. the model's current GMACs, made differentiable w.r.t. every DynOPool's
``alpha`` through the straight-through sizes. :class:`MACsRecorder` measures
it from a real forward pass: forward hooks count the MACs of every
MAC-bearing layer (convolutions, transposed convolutions, linear layers) at
the resolution it actually ran at, and each count is multiplied by
``(H_hat / sg(H_hat)) * (W_hat / sg(W_hat))`` of the DynOPool that governs
that layer's resolution. The factor is exactly 1 in value (so the value is
the true MAC count) and carries the gradient of the layer's size.

Which DynOPool governs a layer is found by following spatial sizes through
the forward: the model input's size is fixed (no DynOPool), a DynOPool's
output size is governed by that DynOPool, and a layer's output size is
governed by whatever governs its input. When two branches share a size, the
most recent one wins; layers without a spatial input (e.g. linear layers on
tokens) take the governor of the previous layer. A spatial size that no
layer produced (a functional resize to a fixed size, a global pooling) is
taken as fixed: its cost has no gradient, rather than a wrong one. A DynOPool whose input is
governed by another DynOPool computes its straight-through size from the
upstream one, so a stage's size is differentiable w.r.t. every scale factor
before it (the spec's chain rule).
"""
import functools
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mmdynopool.ops import DynOPool
from mmdynopool.ops.functional import alpha_to_sizes, straight_through_size
from mmdynopool.utils.nested import first_tensor

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
TRANSPOSED_CONV_TYPES = (nn.ConvTranspose1d, nn.ConvTranspose2d,
                         nn.ConvTranspose3d)
MAC_LAYER_TYPES = CONV_TYPES + TRANSPOSED_CONV_TYPES + (nn.Linear, )

_FIXED = None  # governor of sizes that no DynOPool controls


class Governor:
    """The straight-through output size of one DynOPool in one forward."""

    def __init__(self, name: str, hat_h: Tensor, hat_w: Tensor) -> None:
        self.name = name
        self.hat_h = hat_h
        self.hat_w = hat_w

    def size_factor(self) -> Tensor:
        """Value 1; gradient of the size relative to its value."""
        return (self.hat_h / self.hat_h.detach()) * (
            self.hat_w / self.hat_w.detach())

    def scaled(self, h: int, w: int) -> Tuple[Tensor, Tensor]:
        """Straight-through sizes of a map of size ``(h, w)`` governed by this
        DynOPool (a fixed-stride layer after it scales its size)."""
        return (h * self.hat_h / self.hat_h.detach(),
                w * self.hat_w / self.hat_w.detach())


def spatial_size(tensor: Optional[Tensor]) -> Optional[Tuple[int, int]]:
    if isinstance(tensor, Tensor) and tensor.dim() == 4:
        return int(tensor.shape[2]), int(tensor.shape[3])
    return None


def layer_macs(module: nn.Module, inputs: Tensor, output: Tensor) -> int:
    """MACs of one call of a conv / transposed conv / linear layer, for the
    whole batch (bias additions are not multiply-accumulates)."""
    if isinstance(module, CONV_TYPES):
        kernel = math.prod(module.kernel_size)
        return int(output.numel()) * (module.in_channels //
                                      module.groups) * kernel
    if isinstance(module, TRANSPOSED_CONV_TYPES):
        kernel = math.prod(module.kernel_size)
        return int(inputs.numel()) * (module.out_channels //
                                      module.groups) * kernel
    return int(output.numel()) * module.in_features


class MACsRecorder:
    """Counts the MACs of each forward of ``model`` and the DynOPool sizes
    they depend on. See the module docstring for the method.

    Args:
        model (nn.Module): The model whose forwards are recorded. Every call
            of ``model`` starts a new record; code that runs the model's
            layers without calling ``model`` itself (e.g. ``model.loss()``)
            calls :meth:`start` first.
        exclude (tuple[str]): Names of submodules whose layers are not
            counted. Default: ``('auxiliary_head', )``: mmseg's training-only
            heads are not part of the deployed model's compute.
    """

    def __init__(self,
                 model: nn.Module,
                 exclude: Sequence[str] = ('auxiliary_head', )) -> None:
        self._handles = [
            model.register_forward_pre_hook(self._start_hook,
                                            with_kwargs=True)
        ]
        excluded = tuple(f'{name}.' for name in exclude)
        for name, module in model.named_modules():
            if f'{name}.'.startswith(excluded):
                continue
            if isinstance(module, DynOPool):
                # A partial (not a closure) keeps the model picklable.
                self._handles.append(
                    module.register_forward_hook(
                        functools.partial(self._on_pool, name)))
            elif isinstance(module, MAC_LAYER_TYPES):
                # First among the layer's hooks: a DynOPool attached after
                # it by a forward hook (model surgery) replaces its output,
                # and the layer's cost is that of its own output.
                self._handles.append(
                    module.register_forward_hook(self._count, prepend=True))
        self._reset()

    def _reset(self) -> None:
        self._governors_by_size: Dict[Tuple[int, int], Any] = {}
        self._last_governor: Optional[Governor] = _FIXED
        self._macs_by_governor: Dict[Optional[Governor], int] = {}
        self.batch_size = 1
        self.pool_sizes: Dict[str, Tuple[Tensor, Tensor]] = {}
        self.pool_ratios: Dict[str, Tuple[float, float]] = {}
        self.pool_inputs: Dict[str, Tuple[int, int]] = {}

    def __getstate__(self) -> dict:
        # The record holds autograd graphs: copies start with an empty one.
        return {'_handles': self._handles}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset()

    def remove(self) -> None:
        """Detach all hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def start(self, inputs: Any = None) -> None:
        """Begin a new record; ``inputs`` (the model's input, or anything
        holding it) fixes the size that no DynOPool governs."""
        self._reset()
        size = spatial_size(first_tensor(inputs))
        if size is not None:
            self._governors_by_size[size] = _FIXED

    # -- hooks -------------------------------------------------------------
    def _start_hook(self, module, args, kwargs) -> None:
        self.start((args, kwargs))

    def _governor_of(self, tensor: Optional[Tensor]):
        size = spatial_size(tensor)
        if size is None:
            return self._last_governor
        return self._governors_by_size.get(size, _FIXED)

    def _on_pool(self, name: str, module: DynOPool, args,
                 output: Tensor) -> None:
        x = args[0]
        in_h, in_w = int(x.shape[2]), int(x.shape[3])
        upstream = self._governor_of(x)
        if upstream is _FIXED:
            in_hat = (in_h, in_w)
        else:
            in_hat = upstream.scaled(in_h, in_w)
        # The values the forward just used (read from the device once).
        alpha_values = module.forward_alpha
        ratio = (1.0 / alpha_values[0], 1.0 / alpha_values[1])
        out_h, out_w, pinned_h, pinned_w = alpha_to_sizes(
            alpha_values, in_h, in_w, module.min_size)
        governor = Governor(
            name,
            straight_through_size(module.alpha[0], in_hat[0], out_h,
                                  pinned_h),
            straight_through_size(module.alpha[1], in_hat[1], out_w,
                                  pinned_w))
        self.pool_sizes[name] = (governor.hat_h, governor.hat_w)
        self.pool_ratios[name] = ratio
        self.pool_inputs[name] = (in_h, in_w)
        self._governors_by_size[(out_h, out_w)] = governor
        self._last_governor = governor

    def _count(self, module: nn.Module, args, output: Tensor) -> None:
        x = args[0] if args else None
        if not isinstance(x, Tensor) or not isinstance(output, Tensor):
            return
        governor = self._governor_of(x)
        out_size = spatial_size(output)
        if out_size is not None:
            self._governors_by_size[out_size] = governor
        self._last_governor = governor
        self.batch_size = max(1, int(output.shape[0]))
        self._macs_by_governor[governor] = self._macs_by_governor.get(
            governor, 0) + layer_macs(module, x, output)

    # -- results -----------------------------------------------------------
    @property
    def macs(self) -> float:
        """MACs per sample of the last forward (a plain number)."""
        return sum(self._macs_by_governor.values()) / self.batch_size

    def gmacs(self, device: Optional[torch.device] = None) -> Tensor:
        """GMACs per sample of the last forward, differentiable w.r.t. every
        DynOPool's ``alpha`` (0-d tensor)."""
        total = torch.zeros((), device=device)
        for governor, macs in self._macs_by_governor.items():
            value = macs / self.batch_size / 1e9
            if governor is _FIXED:
                total = total + value
            else:
                factor = governor.size_factor()
                total = total.to(factor.device) + value * factor
        return total

    def macs_by_pool(self) -> List[Tuple[Optional[str], float]]:
        """``(DynOPool name or None, MACs per sample)`` of the last forward."""
        return [(None if governor is _FIXED else governor.name,
                 macs / self.batch_size)
                for governor, macs in self._macs_by_governor.items()]
