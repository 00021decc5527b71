"""Log the learned resolution of every DynOPool layer during training."""
import json
import math
import os.path as osp
from typing import Dict, List, Optional

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from mmdynopool.models.losses import MACsRecorder
from mmdynopool.ops import DynOPool, dynopool_layers

RATIOS_FILE = 'dynopool_ratios.json'


def load_ratio_records(path: str) -> List[dict]:
    """The records of a ratio file written by :class:`DynOPoolRatioHook`
    (``path``: the file, or the work dir holding it), sorted by iteration;
    every reader of the file (tools, hooks) goes through here."""
    if osp.isdir(path):
        path = osp.join(path, RATIOS_FILE)
    with open(path, encoding='utf-8') as f:
        records = json.load(f)
    if not isinstance(records, list) or not records:
        raise ValueError(f'{path} holds no ratio record')
    return sorted(records, key=lambda r: r['iter'])


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a (Distributed)DataParallel wrapper."""
    return model.module if hasattr(model, 'module') else model


def layer_record(name: str, layer: DynOPool,
                 recorder: MACsRecorder) -> Dict[str, float]:
    """``{"r_h", "r_w", "h", "w", "in_h", "in_w"}`` of one layer as it ran
    in the last forward (the optimiser step after it has already moved
    ``alpha``): ratios, output size and input size."""
    if name not in recorder.pool_sizes:  # not run in the last forward
        r_h, r_w = layer.ratio
        return {'r_h': r_h, 'r_w': r_w, 'h': None, 'w': None, 'in_h': None,
                'in_w': None}
    r_h, r_w = recorder.pool_ratios[name]
    hat_h, hat_w = recorder.pool_sizes[name]
    in_h, in_w = recorder.pool_inputs[name]
    return {
        'r_h': r_h,
        'r_w': r_w,
        'h': int(round(float(hat_h.detach()))),
        'w': int(round(float(hat_w.detach()))),
        'in_h': in_h,
        'in_w': in_w
    }


@HOOKS.register_module()
class DynOPoolRatioHook(Hook):
    """Logs ``r_h``, ``r_w`` and the output size of every DynOPool layer, and
    the model's GMACs per image, every ``interval`` training iterations.

    The values go to the text log (one line per interval) and, as scalars
    ``dynopool/<layer>/r_h`` etc. and ``dynopool/gmacs``, to every configured
    visualizer backend (e.g. TensorBoard); they are written directly rather
    than through the message hub so the log shows the exact values, not a
    window average. The hook also keeps
    ``<work_dir>/dynopool_ratios.json``: a JSON list of records
    ``{"iter": int, "gmacs": float, "layers": {name: {"r_h", "r_w", "h",
    "w", "in_h", "in_w"}}}`` (ratios, output and input size) so runs can be
    compared and plotted.

    Args:
        interval (int): Log every ``interval`` iterations (and at the last).
            Default: 50.
        out_file (str): File name in the work dir. Default:
            ``'dynopool_ratios.json'``.
    """

    priority = 'BELOW_NORMAL'

    def __init__(self, interval: int = 50, out_file: str = RATIOS_FILE):
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval must be an integer >= 1, got '
                             f'{interval!r}')
        self.interval = interval
        self.out_file = out_file
        self.records: List[dict] = []
        self._recorder: Optional[MACsRecorder] = None

    def before_train(self, runner) -> None:
        model = unwrap(runner.model)
        self._layers = dynopool_layers(model)
        if not self._layers:
            runner.logger.warning(
                'DynOPoolRatioHook: the model has no DynOPool layer; nothing '
                'to log')
        self._recorder = MACsRecorder(model)
        self.path = osp.join(runner.work_dir, self.out_file)
        if osp.exists(self.path):  # resumed run: continue the same file
            with open(self.path, encoding='utf-8') as f:
                self.records = [
                    r for r in json.load(f) if r['iter'] <= runner.iter
                ]

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        last = runner.iter + 1 == runner.max_iters
        if not (self.every_n_train_iters(runner, self.interval) or last):
            return
        record = self.snapshot(runner.iter + 1)
        self.log(runner, record)
        self.records.append(record)
        if runner.rank == 0:
            with open(self.path, 'w', encoding='utf-8') as f:
                json.dump(self.records, f, indent=1)

    def after_train(self, runner) -> None:
        if self._recorder is not None:
            self._recorder.remove()

    def snapshot(self, iteration: int) -> dict:
        """The record of the last training forward."""
        layers = {
            name: layer_record(name, layer, self._recorder)
            for name, layer in self._layers
        }
        return {
            'iter': iteration,
            'gmacs': float(self._recorder.macs) / 1e9,
            'layers': layers
        }

    @staticmethod
    def log(runner, record: dict) -> None:
        scalars = {'dynopool/gmacs': record['gmacs']}
        parts = [f"gmacs: {record['gmacs']:.4f}"]
        for name, values in record['layers'].items():
            for key, value in values.items():
                if value is not None and math.isfinite(value):
                    scalars[f'dynopool/{name}/{key}'] = value
            parts.append(f"{name}: r=({values['r_h']:.3f}, "
                         f"{values['r_w']:.3f}) size={values['h']}x"
                         f"{values['w']}")
        runner.logger.info(f"DynOPool iter {record['iter']}: " +
                           ', '.join(parts))
        runner.visualizer.add_scalars(scalars, step=record['iter'])
