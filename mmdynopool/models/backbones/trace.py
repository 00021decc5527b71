"""One probe forward of a backbone, recording what every module saw.

The automatic step finder (:mod:`.auto_steps`) works on the built modules
plus this record: which modules ran, how often, in which order, at which
spatial sizes, and which module consumed which module's output. The record
comes from forward hooks on a small probe input, so it sees the real
forward of any backbone (loops over branches, functional calls between
layers) without reading its code.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mmdynopool.utils.nested import first_tensor

Size = Tuple[int, int]
# Probe sizes tried in turn: the first is cheap, the larger ones serve
# backbones that need more (deep pyramids, fixed-size windows).
DEFAULT_PROBE_SIZES = ((64, 64), (128, 128), (256, 256))


def all_tensors(values: Any) -> List[Tensor]:
    """Every tensor in a (nested) tuple / list / dict, in order."""
    if isinstance(values, Tensor):
        return [values]
    if isinstance(values, dict):
        values = list(values.values())
    if isinstance(values, (list, tuple)):
        return [t for value in values for t in all_tensors(value)]
    return []


def spatial(tensor: Optional[Tensor]) -> Optional[Size]:
    if isinstance(tensor, Tensor) and tensor.dim() == 4:
        return int(tensor.shape[2]), int(tensor.shape[3])
    return None


def output_shapes(outputs: Any) -> List[Tuple[int, ...]]:
    """The shapes of a backbone's outputs, flattened in order."""
    return [tuple(t.shape) for t in all_tensors(outputs)]


@dataclass
class Call:
    """One call of one module in the probe forward."""
    name: str
    order: int
    in_size: Optional[Size]
    out_size: Optional[Size]
    in_id: Optional[int]
    out_id: Optional[int]
    # spatial size of every top-level positional argument (None if not 4-d)
    arg_sizes: Tuple[Optional[Size], ...] = ()


@dataclass
class Trace:
    """What the probe forward recorded (see the module docstring)."""
    input_size: Size
    calls: Dict[str, List[Call]] = field(default_factory=dict)
    ordered: List[Call] = field(default_factory=list)
    outputs: List[Tuple[int, ...]] = field(default_factory=list)

    def count(self, name: str) -> int:
        return len(self.calls.get(name, ()))

    def only_call(self, name: str) -> Optional[Call]:
        """The call of a module that ran exactly once, else None."""
        calls = self.calls.get(name, ())
        return calls[0] if len(calls) == 1 else None

    def consumers(self, call: Call) -> List[Call]:
        """Calls whose first input is this call's output tensor."""
        return [c for c in self.ordered
                if c.order > call.order and c.in_id == call.out_id]


def probe_input(backbone: nn.Module, size: Size) -> Tensor:
    """A 1 x C x H x W probe on the backbone's device and dtype."""
    param = next(iter(backbone.parameters()), None)
    device = param.device if param is not None else torch.device('cpu')
    dtype = param.dtype if param is not None else torch.float32
    # The first convolution registered reads the image (a backbone's own
    # ``in_channels`` may name its output channels, as MobileNetV2's).
    convs = (m for m in backbone.modules() if isinstance(m, nn.Conv2d))
    channels = getattr(next(convs, None), 'in_channels', 3)
    generator = torch.Generator().manual_seed(0)
    return torch.rand(1, channels, *size, generator=generator).to(
        device=device, dtype=dtype)


def run_probe(backbone: nn.Module, size: Size) -> Any:
    """Forward the probe in eval mode without gradients (BN statistics stay
    untouched, batch 1 works), restoring the training flags."""
    modes = {m: m.training for m in backbone.modules()}
    backbone.eval()
    try:
        with torch.no_grad():
            return backbone(probe_input(backbone, size))
    finally:
        for module, mode in modes.items():
            module.training = mode


def trace_forward(backbone: nn.Module, size: Size) -> Trace:
    """Run the probe with hooks on every submodule and return the record."""
    trace = Trace(input_size=size)
    keep: List[Any] = []  # holds tensors so their ids stay unique
    handles = []

    def pre_hook(name):
        def hook(module, args):
            x = first_tensor(args)
            keep.append(x)
            call = Call(name, len(trace.ordered), spatial(x), None,
                        id(x) if x is not None else None, None,
                        tuple(spatial(a) for a in args))
            trace.ordered.append(call)
            trace.calls.setdefault(name, []).append(call)
            module._trace_stack = getattr(module, '_trace_stack', []) + [call]
        return hook

    def post_hook(module, args, output):
        call = module._trace_stack.pop()
        y = first_tensor(output)
        keep.append(y)
        call.out_size = spatial(y)
        call.out_id = id(y) if y is not None else None

    for name, module in backbone.named_modules():
        if not name:
            continue
        handles.append(module.register_forward_pre_hook(pre_hook(name)))
        handles.append(module.register_forward_hook(post_hook))
    try:
        trace.outputs = output_shapes(run_probe(backbone, size))
    finally:
        for handle in handles:
            handle.remove()
        for module in backbone.modules():
            module.__dict__.pop('_trace_stack', None)
    return trace


def trace_with_fallback(backbone: nn.Module,
                        sizes: Sequence[Size] = DEFAULT_PROBE_SIZES
                        ) -> Trace:
    """:func:`trace_forward` at the first probe size the backbone accepts."""
    errors = []
    for size in sizes:
        try:
            return trace_forward(backbone, tuple(size))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(f'{size}: {type(error).__name__}: {error}')
    raise RuntimeError(
        f'{type(backbone).__name__} did not run on any probe size; tried '
        + '; '.join(errors) + '. Give probe_size=(H, W) that it accepts')
