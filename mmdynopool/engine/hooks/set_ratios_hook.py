"""Start training from given DynOPool ratios: hand-set shapes, or the ratios
a search run learned (search, then retrain from scratch)."""
import math
import os.path as osp
import random
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from mmdynopool.ops import dynopool_layers
from mmdynopool.ops.functional import output_size
from .fixed_area_hook import project_area
from .ratio_hook import RATIOS_FILE, load_ratio_records, unwrap

Ratios = Dict[str, Tuple[float, float]]


def ratios_from_file(path: str) -> Ratios:
    """``{layer: (r_h, r_w)}`` from a search run: its work dir or
    ``dynopool_ratios.json`` (the last record, written by
    ``DynOPoolRatioHook``), or a checkpoint (``*.alpha`` entries)."""
    if osp.isdir(path):
        path = osp.join(path, RATIOS_FILE)
    if not osp.exists(path):
        raise FileNotFoundError(f'DynOPoolSetRatiosHook: no such file: {path}')
    if path.endswith('.json'):
        last = load_ratio_records(path)[-1]
        return {
            name: (float(v['r_h']), float(v['r_w']))
            for name, v in last['layers'].items()
        }
    checkpoint = torch.load(path, map_location='cpu', weights_only=False)
    state = checkpoint.get('state_dict', checkpoint)
    ratios = {}
    for key, value in state.items():
        if key.endswith('.alpha') and value.numel() == 2:
            a_h, a_w = (float(v) for v in value.double().tolist())
            ratios[key[:-len('.alpha')]] = (1.0 / a_h, 1.0 / a_w)
    if not ratios:
        raise ValueError(f'{path} has no DynOPool alpha')
    return ratios


def mean_ratios(sources: Sequence[str]) -> Ratios:
    """The geometric mean, per layer and axis, of the ratios several search
    runs learned (each read by :func:`ratios_from_file`).

    Why geometric: a search under ``DynOPoolFixedAreaHook`` moves along
    ``r_h * r_w = const``, and the geometric mean stays on that curve (the
    mean of ``log r``), so the averaged shape costs what each search did
    while the seed-to-seed noise of the learned aspect shrinks."""
    if isinstance(sources, str) or not sources:
        raise ValueError('mean_ratios needs a non-empty list of search runs, '
                         f'got {sources!r}')
    per_source = [ratios_from_file(path) for path in sources]
    names = list(per_source[0])
    for path, ratios in zip(sources[1:], per_source[1:]):
        if set(ratios) != set(names):
            raise ValueError(
                f'DynOPoolSetRatiosHook: the search runs name different '
                f'DynOPools: {sorted(names)} in {sources[0]} but '
                f'{sorted(ratios)} in {path}; average runs of one model')
    count = len(per_source)
    return {
        name: tuple(
            math.exp(sum(math.log(r[name][axis]) for r in per_source) / count)
            for axis in (0, 1))
        for name in names
    }


def last_sized_layers(path: str) -> Optional[Dict[str, dict]]:
    """Per layer, its entry of the last record of a search run that has
    sizes (``in_h``, ``in_w``, ``h``, ``w``; frozen layers record none).
    None for a checkpoint, which records no sizes."""
    if not osp.isdir(path) and not path.endswith('.json'):
        return None
    layers: Dict[str, dict] = {}
    for record in load_ratio_records(path):
        for name, layer in record['layers'].items():
            if layer.get('h') is not None:
                layers[name] = layer
    return layers


def searched_pixels(sized: Sequence[Dict[str, dict]],
                    names: Sequence[str]) -> Dict[str, int]:
    """Per layer, the most output pixels any search run ended with (from
    each run's :func:`last_sized_layers`): what the costliest search spent
    there."""
    pixels: Dict[str, int] = {}
    for layers in sized:
        for name in names:
            area = layers[name]['h'] * layers[name]['w']
            pixels[name] = max(pixels.get(name, area), area)
    return pixels


def within_pixels(sized: Sequence[Dict[str, dict]], name: str,
                  start: Tuple[float, float], pixels: float) -> bool:
    """Whether in every search (each run's :func:`last_sized_layers`) the
    output size layer ``name`` ended with is at most ``pixels`` per axis
    from the size the ``start`` ratio gives at the same input (the
    operator's own size rule)."""
    for layers in sized:
        layer = layers[name]
        if abs(layer['h'] - output_size(layer['in_h'], start[0])) > pixels \
                or abs(layer['w'] -
                       output_size(layer['in_w'], start[1])) > pixels:
            return False
    return True


@contextmanager
def kept_random_state():
    """Python's, NumPy's and torch's (CPU) random state are as before on
    leaving: a look at one training sample does not shift the run's random
    stream."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def hold_pixels(runner, model, layers, pixels: Dict[str, int]) -> list:
    """Scale each layer's ``alpha`` (keeping its aspect, as
    :class:`DynOPoolFixedAreaHook` does) to at most ``pixels[name]`` output
    pixels at the input it gets in one forward of a training sample: a
    layer's input depends on the sizes of the layers before it, which
    averaged ratios change. The forward runs without gradient, in eval mode
    (no BatchNorm statistics move) and keeps the random state. Returns
    ``(name, out_h, out_w)`` per held layer."""
    held, handles = [], []
    for name, layer in layers:
        if name not in pixels:
            continue

        def project(module, args, name=name):
            in_h, in_w = args[0].shape[-2:]
            out_h, out_w = project_area(module, int(in_h), int(in_w),
                                        pixels[name])
            held.append((name, out_h, out_w))

        handles.append(layer.register_forward_pre_hook(project))
    was_training = model.training
    try:
        with kept_random_state(), torch.no_grad():
            loader = runner.train_dataloader
            batch = loader.collate_fn([loader.dataset[0]])
            data = model.data_preprocessor(batch, False)
            model.eval()
            if isinstance(data, dict):
                model(**data, mode='tensor')
            else:
                model(*data, mode='tensor')
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return held


@HOOKS.register_module()
class DynOPoolSetRatiosHook(Hook):
    """Before training, set the ratios of the model's DynOPools.

    * hand-set shapes: ``ratios=dict(pool1=(0.25, 1.0))``;
    * search, then retrain: ``source='work_dirs/<search run>'`` (its
      ``dynopool_ratios.json``) or a checkpoint of it. The weights are not
      taken (train them from scratch); combine with
      ``dict(type='FreezeDynOPoolHook', freeze_at_iter=0)`` to train only the
      weights at those sizes;
    * several searches, averaged: ``source=['work_dirs/search_a',
      'work_dirs/search_b']`` starts from the geometric mean of their
      ratios (:func:`mean_ratios`): searches with different seeds agree on
      a shape the data asks for and disagree on noise, which the mean
      shrinks (``configs/demo/STUDY.md``, section 12). Each layer then
      gets at most the output area the costliest search ended with there
      (as close to it as rounding allows), at the input
      it gets (one forward of a training sample before training;
      ``hold_area``): the averaged sizes change later layers' inputs, and
      rounding would otherwise let the mean cost more than any search.

    Layers are matched by full name or by the last part of it (``pool1``
    matches ``backbone.pool1``); a name that matches no DynOPool, or a model
    layer the source does not name (``strict=True``), is an error. A resumed
    run (``runner.iter > 0``) keeps the ratios of its checkpoint.

    Args:
        ratios (dict, optional): ``{layer: (r_h, r_w)}`` or ``{layer: r}``.
        source (str | list[str], optional): A search run's work dir,
            ``dynopool_ratios.json`` or checkpoint; or a list of them, whose
            ratios are averaged (geometric mean).
        strict (bool): Every DynOPool of the model must get a ratio.
            Default: False for ``ratios``, True for ``source``.
        snap_pixels (float): The first layers (in the model's order) whose
            learned output size is at most this many pixels per axis from
            the size their start ratio gives (in every source, at the input
            they had there) keep the model's own ratio, up to the first
            layer that moved further; the network up to there is then
            exactly at its start sizes (and compute): a search that
            moved a layer by a pixel found no shape worth leaving the exact
            grid of the start (on the demo one pixel off the fixed stride
            cost up to 1 mIoU a seed, ``configs/demo/STUDY.md`` section
            12). Default: 0 (off).
        hold_area (bool): With several sources, hold each layer at most at
            the largest output area the searches ended with (see above).
            Sources without recorded sizes (checkpoints) cannot be held: an
            error names them.
            Default: True.
    """

    priority = 'HIGHEST'  # before FreezeDynOPoolHook (VERY_HIGH) freezes

    def __init__(self,
                 ratios: Optional[Dict[str, Union[float, Tuple[float,
                                                               float]]]] = None,
                 source: Optional[Union[str, Sequence[str]]] = None,
                 strict: Optional[bool] = None,
                 snap_pixels: float = 0,
                 hold_area: bool = True) -> None:
        if (ratios is None) == (source is None):
            raise ValueError('DynOPoolSetRatiosHook: give either ratios or '
                             'source')
        if ratios is not None:
            if not isinstance(ratios, dict) or not ratios:
                raise ValueError(f'ratios must be a non-empty dict, got '
                                 f'{ratios!r}')
            checked = {}
            for name, value in ratios.items():
                pair = (value, value) if isinstance(value,
                                                    (int, float)) else value
                if len(pair) != 2 or not all(
                        isinstance(v, (int, float)) and v > 0 for v in pair):
                    raise ValueError(f'ratio of {name!r} must be r > 0 or '
                                     f'(r_h, r_w), got {value!r}')
                checked[name] = (float(pair[0]), float(pair[1]))
            ratios = checked
        if source is not None and not isinstance(source, str):
            source = list(source)
            if not source or not all(isinstance(p, str) for p in source):
                raise ValueError(f'source must be a path or a non-empty list '
                                 f'of paths, got {source!r}')
        self.ratios = ratios
        self.source = source
        self.strict = (source is not None) if strict is None else strict
        self.hold_area = bool(hold_area)
        if isinstance(snap_pixels, bool) or not isinstance(
                snap_pixels, (int, float)) or snap_pixels < 0:
            raise ValueError(f'snap_pixels must be a number >= 0, got '
                             f'{snap_pixels!r}')
        if snap_pixels and source is None:
            raise ValueError('snap_pixels needs a source (search runs), not '
                             'hand-set ratios')
        self.snap_pixels = float(snap_pixels)

    def _sized(self, ratios: Ratios, what: str) -> List[Dict[str, dict]]:
        """Each source's :func:`last_sized_layers`, read once; an error
        saying ``what`` cannot be done when a source recorded no sizes for
        a layer."""
        sources = [self.source] if isinstance(self.source, str) \
            else self.source
        sized = [last_sized_layers(path) for path in sources]
        for path, layers in zip(sources, sized):
            if layers is None or any(name not in layers for name in ratios):
                raise ValueError(
                    f'DynOPoolSetRatiosHook: {what}: {path} has no recorded '
                    f'sizes (a checkpoint?); give the search runs\' work '
                    f'dirs or dynopool_ratios.json files')
        return sized

    def _ratios_and_pixels(
            self) -> Tuple[Ratios, Dict[str, int], List[Dict[str, dict]]]:
        """The ratios to set, the output pixels to hold them at (only for
        averaged sources) and the sources' sized layers (only for
        ``snap_pixels``)."""
        if self.ratios is not None:
            return self.ratios, {}, []
        if isinstance(self.source, str):
            ratios = ratios_from_file(self.source)
        else:
            ratios = mean_ratios(self.source)
        hold = self.hold_area and not isinstance(self.source, str)
        if not (hold or self.snap_pixels):
            return ratios, {}, []
        sized = self._sized(
            ratios, 'cannot hold the area of averaged ratios (or set '
            'hold_area=False)' if hold else 'snap_pixels needs the sizes '
            'the searches recorded')
        pixels = searched_pixels(sized, list(ratios)) if hold else {}
        return ratios, pixels, sized

    def before_train(self, runner) -> None:
        if runner.iter > 0:
            return
        ratios, pixels, sized = self._ratios_and_pixels()
        model = unwrap(runner.model)
        layers = dynopool_layers(model)
        used, handled, wanted, snapped = set(), [], {}, []
        for name, layer in layers:
            key = name if name in ratios else name.split('.')[-1]
            if key not in ratios:
                if self.strict:
                    raise ValueError(f'DynOPoolSetRatiosHook: no ratio for '
                                     f'{name} in {self.source or ratios}')
                continue
            used.add(key)
            handled.append((name, layer))
            # only while every layer before it kept the start too: then its
            # input, and so its size, are exactly the start's (a layer
            # after a moved one would round to other sizes and may cost
            # more than its search did)
            if self.snap_pixels and len(snapped) == len(used) - 1 and \
                    within_pixels(sized, key, layer.ratio,
                                  self.snap_pixels):
                snapped.append(name)
                continue
            r_h, r_w = ratios[key]
            low, high = layer.ratio_range
            if not (low <= r_h <= high and low <= r_w <= high):
                raise ValueError(f'DynOPoolSetRatiosHook: ratio ({r_h}, '
                                 f'{r_w}) of {name} lies outside its '
                                 f'ratio_range {layer.ratio_range}')
            with torch.no_grad():
                layer.alpha.copy_(
                    torch.tensor([1.0 / r_h, 1.0 / r_w],
                                 dtype=layer.alpha.dtype))
            if key in pixels:
                wanted[name] = pixels[key]
        unused = [k for k in ratios if k not in used]
        if unused and (self.ratios is not None or self.strict):
            raise ValueError(f'DynOPoolSetRatiosHook: no DynOPool named '
                             f'{unused} in the model')
        held = hold_pixels(runner, model, layers, wanted) if wanted else []
        parts = [
            f'{name}: r=({layer.ratio[0]:.4f}, {layer.ratio[1]:.4f})'
            for name, layer in handled
        ]
        if held:
            parts.append('held at most the searches\' output area: ' +
                         ', '.join(f'{n} {h}x{w}' for n, h, w in held))
        if snapped:
            parts.append(f'kept the start ratio (learned within '
                         f'{self.snap_pixels:g} px of it): ' +
                         ', '.join(snapped))
        runner.logger.info('DynOPoolSetRatiosHook: ' + ', '.join(parts))
