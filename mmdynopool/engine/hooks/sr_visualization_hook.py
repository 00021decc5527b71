"""Save super-resolved images as PNG files during testing."""
import os
import os.path as osp
from typing import Optional, Sequence

import cv2
import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def to_bgr_uint8(img: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` float in [0, 1] (or uint8) -> ``(H, W, 3)`` BGR
    uint8, rounded like the metrics do."""
    img = img.detach().cpu()
    if img.is_floating_point():
        img = (img.clamp(0, 1) * 255).round()
    rgb = img.to(torch.uint8).permute(1, 2, 0).numpy()
    return np.ascontiguousarray(rgb[..., ::-1])


@HOOKS.register_module()
class SRVisualizationHook(Hook):
    """Write every ``interval``-th test batch's SR outputs as PNG files
    ``<show_dir>/<dataset_name>/<key>.png``.

    ``tools/test.py --show-dir DIR`` sets ``draw=True`` and
    ``show_dir=DIR``. A relative ``show_dir`` is taken under the run's
    ``work_dir/<timestamp>``, as mmdet / mmseg do.

    Args:
        draw (bool): Save images; off by default so training and plain
            evaluation write nothing. Default: False.
        show_dir (str, optional): Output folder. Default: ``'sr_results'``.
        interval (int): Save every ``interval``-th test batch. Default: 1.
        show (bool): Not supported (no display); accepted so that
            ``tools/test.py --show`` fails with a clear message.
        wait_time (float): Accepted for ``--show``; unused.
    """

    priority = 'NORMAL'

    def __init__(self,
                 draw: bool = False,
                 show_dir: Optional[str] = None,
                 interval: int = 1,
                 show: bool = False,
                 wait_time: float = 0.) -> None:
        if isinstance(interval,
                      bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval must be an integer >= 1, got '
                             f'{interval!r}')
        if show:
            raise ValueError('SRVisualizationHook cannot display images '
                             '(show=True); use --show-dir DIR to save them')
        self.draw = draw
        self.show_dir = show_dir or 'sr_results'
        self.interval = interval
        self.saved: int = 0

    def before_test(self, runner) -> None:
        if self.draw and not osp.isabs(self.show_dir):
            self.show_dir = osp.join(runner.work_dir, runner.timestamp,
                                     self.show_dir)

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch: Optional[dict] = None,
                        outputs: Optional[Sequence] = None) -> None:
        if not self.draw or not outputs or \
                not self.every_n_inner_iters(batch_idx, self.interval):
            return
        for i, sample in enumerate(outputs):
            if 'pred_img' not in sample:
                continue
            folder = osp.join(self.show_dir,
                              sample.metainfo.get('dataset_name', ''))
            os.makedirs(folder, exist_ok=True)
            key = sample.metainfo.get('key', f'{batch_idx:06d}_{i}')
            path = osp.join(folder, f'{key}.png')
            if not cv2.imwrite(path, to_bgr_uint8(sample.pred_img)):
                raise OSError(f'could not write {path!r}')
            self.saved += 1

    def after_test(self, runner) -> None:
        if self.draw:
            runner.logger.info(f'SRVisualizationHook: {self.saved} SR '
                               f'image(s) saved to {self.show_dir}')
