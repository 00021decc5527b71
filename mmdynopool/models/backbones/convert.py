"""Convert a built backbone: its resizing steps become DynOPools.

This is the one surgery of the project. :func:`convert_backbone` finds the
steps (by rule, :mod:`.auto_steps`, or as given), applies them with the
hooks of :mod:`.surgery` (parameter names unchanged), installs the size
followers of :mod:`.followers`, and checks the result on a probe input:

1. at the initial ratios, the backbone's output shapes must be the plain
   backbone's; a step whose DynOPool gives another size than the layer it
   replaces is named;
2. at ratios moved away from the initial ones (each layer's ``r_h`` and
   ``r_w`` times 1.1 to 1.4, differently per layer) the forward must run;
   a step whose learned ratio would break the network (its output meets a
   path of fixed size) is named.

Found steps that fail a check are skipped with the reason and the backbone
is built again without them (``rebuild``); steps given by hand that fail
are an error. The check is one probe size and growing ratios: it does not
prove that every ratio works.
"""
import functools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log

from mmdynopool.ops import DynOPool
from .auto_steps import find_steps
from .followers import follower_exclusions, install_followers
from .surgery import ResizeStep, apply_resize_step, check_dynopool_cfg
from .trace import (DEFAULT_PROBE_SIZES, Size, Trace, output_shapes,
                    run_probe, trace_forward, trace_with_fallback)

Steps = Union[str, Sequence[str], Mapping[str, ResizeStep]]
# How far the stability check moves the ratios (growth only: shrinking
# could make a map too small for a fixed kernel, a false alarm). Layers get
# different factors in turn, so that two parallel paths resized alike at
# the initial ratios disagree.
PERTURBATIONS = ((1.25, 1.1), (1.4, 1.2), (1.1, 1.3))


class ConversionError(RuntimeError):
    """A converted backbone does not behave like the plain one."""


@dataclass
class Conversion:
    """What :func:`convert_backbone` did.

    Args:
        names (OrderedDict): ``{step name: dotted name of its DynOPool}``.
        skipped (OrderedDict): ``{layer name: reason}`` left unconverted.
        followers (list[str]): Modules that got a size follower.
        probe_size (tuple): The probe input's ``(H, W)``.
    """
    names: 'OrderedDict[str, str]' = field(default_factory=OrderedDict)
    skipped: 'OrderedDict[str, str]' = field(default_factory=OrderedDict)
    followers: List[str] = field(default_factory=list)
    probe_size: Optional[Size] = None


def check_steps(steps: Steps) -> Steps:
    if isinstance(steps, str):
        if steps != 'auto':
            raise ValueError(f"steps must be 'auto', a list of step names or "
                             f'a dict of ResizeSteps, got {steps!r}')
        return steps
    if isinstance(steps, Mapping):
        return OrderedDict(
            (name, step if isinstance(step, ResizeStep) else ResizeStep(
                **step)) for name, step in steps.items())
    if isinstance(steps, (list, tuple)) and all(
            isinstance(s, str) for s in steps):
        if len(set(steps)) != len(steps):
            raise ValueError(f'steps lists a step twice: {list(steps)}')
        return list(steps)
    raise TypeError(f"steps must be 'auto', a list of step names or a dict "
                    f'of ResizeSteps, got {steps!r}')


def select(found: 'OrderedDict[str, ResizeStep]',
           steps: Steps) -> 'OrderedDict[str, ResizeStep]':
    if steps == 'auto':
        return OrderedDict(found)
    if isinstance(steps, Mapping):
        return OrderedDict(steps)
    unknown = [s for s in steps if s not in found]
    if unknown:
        raise ValueError(f'steps has unknown steps {unknown}; the steps '
                         f"found in this backbone are {list(found)} (use "
                         "steps='auto' for all of them)")
    return OrderedDict((n, s) for n, s in found.items() if n in steps)


def dynopool_output_sizes(backbone: nn.Module, names: Mapping[str, str],
                          size: Size) -> Dict[str, tuple]:
    """Run the probe; ``{step: output size of its DynOPool}``."""
    seen, handles = {}, []

    def record(step, module, args, output):
        seen.setdefault(step, tuple(output.shape[2:]))  # returns None

    for step, name in names.items():
        handles.append(backbone.get_submodule(name).register_forward_hook(
            functools.partial(record, step)))
    try:
        outputs = output_shapes(run_probe(backbone, size))
    finally:
        for handle in handles:
            handle.remove()
    return outputs, seen


def expected_sizes(trace: Trace, steps: Mapping[str, ResizeStep],
                   members: Mapping[str, List[str]]) -> Dict[str, tuple]:
    """The size each step's DynOPool must produce at its initial ratio: the
    plain output of the layers it replaces."""
    expected = {}
    for step_name, step in steps.items():
        covered = members.get(step_name, [step.scope or step.host])
        call = trace.only_call(covered[0])
        if call is not None and call.out_size is not None:
            expected[step_name] = call.out_size
    return expected


def initial_mismatches(backbone: nn.Module, trace: Trace,
                       names: Mapping[str, str],
                       expected: Mapping[str, tuple]) -> Dict[str, str]:
    """``{}`` if the converted backbone's outputs at the initial ratios
    have the plain one's shapes, else ``{step: what differs}`` for the
    steps whose DynOPool does not give its plain layer's size (e.g. a
    stride-2 layer on an odd size rounds up, ``round(H / 2)`` to even)."""
    outputs, seen = dynopool_output_sizes(backbone, names, trace.input_size)
    if outputs == trace.outputs:
        return {}
    wrong = {
        step: f'at its initial ratio its DynOPool gives {seen.get(step)} '
        f'where the plain layer gives {expected[step]} on the '
        f'{trace.input_size} probe'
        for step in names
        if step in expected and seen.get(step) != expected[step]
    }
    if not wrong:
        raise ConversionError(
            f'{type(backbone).__name__}: at the initial ratios the converted '
            f'backbone gives outputs {outputs}, the plain one '
            f'{trace.outputs} on a {trace.input_size} probe, although every '
            'DynOPool gives its plain size; convert fewer steps')
    return wrong


def set_ratios(layers: Sequence[DynOPool]) -> list:
    """Scale the layers' ratios by the factors of ``PERTURBATIONS`` in turn
    (within their range); returns the old alphas."""
    old = [layer.alpha.detach().clone() for layer in layers]
    with torch.no_grad():
        for index, layer in enumerate(layers):
            factor = PERTURBATIONS[index % len(PERTURBATIONS)]
            low, high = layer.ratio_range
            r_h, r_w = layer.ratio
            layer.alpha.copy_(torch.tensor([
                1 / min(max(r_h * factor[0], low), high),
                1 / min(max(r_w * factor[1], low), high)
            ]))
    return old


def restore(layers: Sequence[DynOPool], alphas: list) -> None:
    with torch.no_grad():
        for layer, alpha in zip(layers, alphas):
            layer.alpha.copy_(alpha)


def runs_at(backbone: nn.Module, layers: Sequence[DynOPool],
            size: Size) -> Optional[str]:
    """None if the probe runs with ``layers`` perturbed, else the error."""
    old = set_ratios(layers)
    try:
        run_probe(backbone, size)
        return None
    except Exception as error:  # noqa: BLE001 - the error is the answer
        return f'{type(error).__name__}: {str(error)[:200]}'
    finally:
        restore(layers, old)


def unstable_steps(backbone: nn.Module, names: Mapping[str, str],
                   size: Size) -> Dict[str, str]:
    """``{step: error}`` of the steps whose learned ratio breaks the
    forward: one probe in all when none does; otherwise the steps are
    taken in order and kept while the forward still runs with every kept
    step moved (one probe per step), which also finds steps that only fail
    together (two paths that must agree)."""
    layers = {s: backbone.get_submodule(n) for s, n in names.items()}
    layers = {s: m for s, m in layers.items() if isinstance(m, DynOPool)}
    if runs_at(backbone, list(layers.values()), size) is None:
        return {}
    kept, failures = [], {}
    for step, layer in layers.items():
        error = runs_at(backbone, kept + [layer], size)
        if error is None:
            kept.append(layer)
        else:
            failures[step] = error
    return failures


def apply_steps(backbone: nn.Module, steps: Mapping[str, ResizeStep],
                dynopool_cfg: Optional[dict],
                conversion: Conversion, strict: bool) -> None:
    for step_name, step in steps.items():
        try:
            conversion.names[step_name] = apply_resize_step(
                backbone, step, dynopool_cfg)
        except (ValueError, TypeError) as error:
            if strict:
                raise
            conversion.skipped[step_name] = str(error)


def convert_backbone(backbone: nn.Module,
                     steps: Steps = 'auto',
                     dynopool_cfg: Optional[dict] = None,
                     probe_size: Optional[Sequence[int]] = None,
                     rebuild: Optional[Callable[[], nn.Module]] = None,
                     _excluded: Optional[Dict[str, str]] = None
                     ) -> nn.Module:
    """Replace the resizing steps of ``backbone`` by DynOPools, in place.

    Args:
        backbone (nn.Module): A built backbone.
        steps (str | list[str] | dict): ``'auto'`` (every step the rules
            find), a list of their names, or ``{name: ResizeStep}`` given by
            hand (applied as given; an error is raised where one fails).
        dynopool_cfg (dict, optional): Options of every DynOPool
            (``aggregation``, ``ratio_range``, ``min_size``).
        probe_size (tuple[int], optional): ``(H, W)`` of the probe input.
            Default: the first of 64, 128, 256 that the backbone accepts.
        rebuild (callable, optional): Builds a fresh plain backbone; used
            with found steps to start over without the steps whose learned
            ratio breaks the forward (they are skipped with the reason).
            Without it such steps are an error.

    Returns:
        nn.Module: ``backbone`` (or a rebuilt one), with the attributes
        ``dynopool_names`` (``{step: DynOPool name}``),
        ``dynopool_skipped`` (``{layer: reason}``) and
        ``dynopool_followers``.
    """
    steps = check_steps(steps)
    dynopool_cfg = check_dynopool_cfg(dynopool_cfg)
    if probe_size is not None:
        trace = trace_forward(backbone, tuple(probe_size))
    else:
        trace = trace_with_fallback(backbone, DEFAULT_PROBE_SIZES)
    excluded = dict(follower_exclusions(backbone), **(_excluded or {}))
    found = find_steps(backbone, trace, excluded)
    chosen = select(found.steps, steps)
    by_hand = isinstance(steps, Mapping)
    conversion = Conversion(probe_size=trace.input_size)
    if not by_hand:
        conversion.skipped.update(found.skipped)
    apply_steps(backbone, chosen, dynopool_cfg, conversion, strict=by_hand)
    conversion.followers = install_followers(backbone, trace)
    wrong = initial_mismatches(backbone, trace, conversion.names,
                               expected_sizes(trace, chosen, found.members))
    if wrong and (by_hand or rebuild is None):
        step, why = next(iter(wrong.items()))
        raise ConversionError(
            f'{type(backbone).__name__}: at the initial ratios the output '
            f'shapes differ from the plain backbone\'s; first wrong step: '
            f'{step} ({why}). Leave that step out of steps')
    unstable = {} if wrong else unstable_steps(backbone, conversion.names,
                                                 trace.input_size)
    if unstable and (by_hand or rebuild is None):
        raise ConversionError(
            f'{type(backbone).__name__}: with learned ratios the forward '
            f'fails at steps {unstable}; leave them out of steps')
    if wrong or unstable:
        reasons = {
            name: 'its learned ratio breaks the forward (its output meets '
            f'a path of fixed size): {error}'
            for name, error in unstable.items()
        }
        reasons.update(wrong)
        unstable = reasons
        return convert_backbone(
            rebuild(), [s for s in conversion.names if s not in unstable],
            dynopool_cfg, trace.input_size, rebuild,
            _excluded=dict(_excluded or {}, **reasons))
    backbone.dynopool_names = conversion.names
    backbone.dynopool_skipped = conversion.skipped
    backbone.dynopool_followers = conversion.followers
    log_conversion(backbone, conversion)
    return backbone


def log_conversion(backbone: nn.Module, conversion: Conversion) -> None:
    kind = type(backbone).__name__
    print_log(
        f'DynOPool: {kind} got {len(conversion.names)} DynOPools '
        f'({", ".join(conversion.names) or "none"}); size followers at '
        f'{len(conversion.followers)} modules',
        logger='current')
    for name, reason in conversion.skipped.items():
        print_log(f'DynOPool: {kind}.{name} left as it is: {reason}',
                  logger='current')
