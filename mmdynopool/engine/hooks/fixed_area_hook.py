"""Hold every DynOPool's output area: only the aspect ``r_h / r_w`` is
learned, at no more compute."""
import math
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from mmdynopool.ops import DynOPool, dynopool_layers
from mmdynopool.ops.functional import alpha_to_sizes
from .ratio_hook import unwrap

MAX_SHRINK_STEPS = 400
SHRINK = 1.002


def project_area(layer: DynOPool, in_h: int, in_w: int, pixels: float,
                 max_aspect: Optional[float] = None) -> Tuple[int, int]:
    """Scale ``layer.alpha`` in place (both axes by one factor, so that
    ``r_h / r_w`` is kept) so that the layer's output on an ``in_h x in_w``
    input has ``out_h * out_w <= pixels`` with the continuous area
    ``r_h * in_h * r_w * in_w`` as close to ``pixels`` as the rounding of
    the sizes allows; both ratios stay within ``ratio_range`` (where one
    hits a bound the other takes the rest of the area). ``max_aspect``:
    first bring ``r_h / r_w`` into ``[1/max_aspect, max_aspect]``. Returns
    the output size."""
    low, high = layer.alpha_bounds  # alpha = 1 / r
    # the bounds first, as the next forward would (a large step may even
    # have left alpha <= 0)
    a_h, a_w = (min(max(float(v), low), high)
                for v in layer.alpha.detach().double().tolist())
    if max_aspect is not None:
        product = a_h * a_w
        q = min(max(a_h / a_w, 1.0 / max_aspect), max_aspect)
        a_h, a_w = math.sqrt(product * q), math.sqrt(product / q)
    target = in_h * in_w / pixels  # alpha_h * alpha_w for the area
    scale = math.sqrt(target / (a_h * a_w))
    a_h, a_w = a_h * scale, a_w * scale
    if not low <= a_h <= high:
        a_h = min(max(a_h, low), high)
        a_w = min(max(target / a_h, low), high)
    elif not low <= a_w <= high:
        a_w = min(max(a_w, low), high)
        a_h = min(max(target / a_w, low), high)
    with torch.no_grad():
        for _ in range(MAX_SHRINK_STEPS):
            layer.alpha.copy_(
                torch.tensor([a_h, a_w], dtype=layer.alpha.dtype))
            # the values the next forward reads (alpha's own precision)
            values = [float(v) for v in layer.alpha.detach().tolist()]
            out_h, out_w, _, _ = alpha_to_sizes(values, in_h, in_w,
                                                layer.min_size)
            if out_h * out_w <= pixels or (a_h >= high and a_w >= high):
                break
            a_h, a_w = min(a_h * SHRINK, high), min(a_w * SHRINK, high)
    return out_h, out_w


@HOOKS.register_module()
class DynOPoolFixedAreaHook(Hook):
    """After every optimiser step, scale each DynOPool's ``alpha`` (both
    axes alike, keeping the learned aspect ``r_h / r_w``) so that its output
    has at most as many pixels as at the first training forward (times
    ``area_scale``), and as close to that as the rounding allows.

    Every layer then runs at no more than its initial output area: the
    model's compute stays at most its initial GMACs without a budget loss,
    and the ratios can only trade height for width - a learned anisotropy
    at equal compute.

    Why not the budget loss for this: in ``match`` mode the GMACs term's
    ``alpha`` gradient is 4-50x the batch-to-batch spread of the task
    gradient on the demo (``tools/analysis_tools/alpha_grad_snr.py``), so
    Adam's second moment, and with it the step size of ``alpha``, is set by
    the budget term, and the task gradient, which alone decides the aspect
    (the budget gradient is the same for ``h`` and ``w`` of a square map),
    moves ``alpha`` by little (see ``configs/demo/STUDY.md``). Use this hook
    without a budget loss (or with one that stays inactive).

    After ``FreezeDynOPoolHook`` has replaced the layers by static ones, this
    hook has nothing left to do.

    Args:
        area_scale (float): Output pixels of each layer, as a multiple of
            its output pixels at the first training forward. Default: 1.0.
        layers (Sequence[str], optional): Names (full, or the last part,
            e.g. ``'pool1'``) of the layers to hold; others learn freely.
            Default: all DynOPool layers.
        max_aspect (float, optional): Also keep ``r_h / r_w`` within
            ``[1/max_aspect, max_aspect]`` (a guard against a layer running
            away to a sliver whose weights then hold it there). Default:
            None (no bound).
    """

    # before FreezeDynOPoolHook (VERY_HIGH) freezes, and before the ratio /
    # checkpoint hooks see alpha
    priority = 'HIGHEST'

    def __init__(self,
                 area_scale: float = 1.0,
                 layers: Optional[Sequence[str]] = None,
                 max_aspect: Optional[float] = None) -> None:
        if max_aspect is not None and (isinstance(max_aspect, bool) or
                                       not isinstance(max_aspect,
                                                      (int, float))
                                       or not 1 <= max_aspect < math.inf):
            raise ValueError(f'max_aspect must be a number >= 1 or None, '
                             f'got {max_aspect!r}')
        self.max_aspect = None if max_aspect is None else float(max_aspect)
        if isinstance(area_scale, bool) or not isinstance(
                area_scale, (int, float)) or not 0 < area_scale < math.inf:
            raise ValueError(f'area_scale must be a number > 0, got '
                             f'{area_scale!r}')
        if layers is not None and (isinstance(layers, str) or not all(
                isinstance(name, str) for name in layers)):
            raise ValueError(f'layers must be a list of layer names or None, '
                             f'got {layers!r}')
        self.area_scale = float(area_scale)
        self.layers = None if layers is None else list(layers)
        self.pixels: Dict[str, float] = {}
        self.inputs: Dict[str, Tuple[int, int]] = {}
        self._handles: list = []

    def _selected(self, runner):
        model = unwrap(runner.model)
        for name, module in dynopool_layers(model):
            if self.layers is None or name in self.layers or \
                    name.split('.')[-1] in self.layers:
                yield name, module

    def _record(self, name: str):

        def hook(layer, args, output) -> None:
            if not layer.training:
                return
            in_h, in_w = int(args[0].shape[-2]), int(args[0].shape[-1])
            self.inputs[name] = (in_h, in_w)
            if name not in self.pixels:  # the first training forward
                self.pixels[name] = float(output.shape[-2] *
                                          output.shape[-1]) * self.area_scale

        return hook

    def before_train(self, runner) -> None:
        selected = list(self._selected(runner))
        if self.layers is not None:
            found = {n for n, _ in selected} | {
                n.split('.')[-1] for n, _ in selected}
            missing = [n for n in self.layers if n not in found]
            if missing:
                raise ValueError(f'DynOPoolFixedAreaHook: no DynOPool named '
                                 f'{missing} in the model')
        if runner.iter > 0 and not self.pixels:
            runner.logger.warning(
                'DynOPoolFixedAreaHook: resumed run; the areas are taken '
                'from its first forward, not from the start of training')
        for name, layer in selected:
            self._handles.append(
                layer.register_forward_hook(self._record(name)))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        for name, layer in self._selected(runner):
            if name in self.pixels and name in self.inputs:
                project_area(layer, *self.inputs[name], self.pixels[name],
                             self.max_aspect)

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
