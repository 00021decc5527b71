"""Fixtures of the segmentation tool tests: tiny datasets in mmseg's exact
layouts, the ``--cfg-options`` that shrink the real DynOPool recipes to a
test-size model, subprocess helpers and a hook that dumps every DynOPool's
``alpha`` per rank.

The datasets are read by mmseg's own dataset classes, transforms and
``IoUMetric`` (nothing here re-implements them): the files only have to be
where mmseg looks for them.

- ADE20K (``ADE20KDataset``, ``reduce_zero_label=True``)::

      root/images/{training,validation}/ADE_*.jpg
      root/annotations/{training,validation}/ADE_*.png   # 0 = ignore, 1..150

- Cityscapes (``CityscapesDataset``)::

      root/leftImg8bit/{train,val}/<city>/<city>_*_leftImg8bit.png
      root/gtFine/{train,val}/<city>/<city>_*_gtFine_labelTrainIds.png
                                                          # 0..18, 255 ignore

- Pascal VOC (``PascalVOCDataset``)::

      root/JPEGImages/*.jpg, root/SegmentationClass/*.png (0..20, 255),
      root/ImageSets/Segmentation/{train,val}.txt

Every image has a learnable structure: an upper and a lower band of two
classes and a rectangle of a third one, each class with its own colour plus
a little noise, so a few iterations already move the logits.
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')
CONFIGS = osp.join(REPO, 'configs', 'dynopool')

ADE_CONFIG = osp.join(CONFIGS,
                      'fcn_dynopool-r50-d8_4xb4-80k_ade20k-512x512.py')
CITYSCAPES_CONFIG = osp.join(
    CONFIGS, 'fcn_dynopool-r50-d8_4xb2-80k_cityscapes-512x1024.py')

LABELME_VOC = ('/usr/share/doc/labelme-examples/examples/'
               'semantic_segmentation/data_dataset_voc')

# (height, width) of the synthetic images.
IMAGE_SIZE = (64, 96)

# The three classes a synthetic image shows: upper band, lower band,
# rectangle. ADE20K values are those of the annotation PNG (1-based,
# reduce_zero_label makes them 0-based); Cityscapes are train ids.
ADE_LABELS = (3, 4, 13)  # sky, floor, person (PNG values)
CITYSCAPES_LABELS = (10, 0, 13)  # sky, road, car (train ids)
COLOURS = ((70, 130, 180), (128, 64, 128), (220, 20, 60))  # RGB


def synthetic_pair(rng: np.random.Generator,
                   labels: Sequence[int],
                   ignore: int,
                   size: Tuple[int, int] = IMAGE_SIZE
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """An RGB image (uint8, HxWx3) and its label map (uint8, HxW).

    The horizon row and the rectangle move from image to image; a one-pixel
    frame of the label map is ``ignore``.
    """
    h, w = size
    label = np.empty((h, w), np.uint8)
    horizon = int(rng.integers(h // 3, 2 * h // 3))
    label[:horizon] = labels[0]
    label[horizon:] = labels[1]
    rh, rw = int(rng.integers(h // 4, h // 2)), int(rng.integers(w // 5,
                                                                 w // 3))
    top, left = int(rng.integers(0, h - rh)), int(rng.integers(0, w - rw))
    label[top:top + rh, left:left + rw] = labels[2]
    image = np.zeros((h, w, 3), np.float32)
    for value, colour in zip(labels, COLOURS):
        image[label == value] = colour
    image += rng.normal(0, 8, image.shape)
    label[0, :] = label[-1, :] = label[:, 0] = label[:, -1] = ignore
    return np.clip(image, 0, 255).astype(np.uint8), label


def _save(image: np.ndarray, label: np.ndarray, img_path: str,
          seg_path: str) -> None:
    os.makedirs(osp.dirname(img_path), exist_ok=True)
    os.makedirs(osp.dirname(seg_path), exist_ok=True)
    if img_path.endswith('.jpg'):
        Image.fromarray(image).save(img_path, quality=95)
    else:
        Image.fromarray(image).save(img_path)
    Image.fromarray(label).save(seg_path)  # uint8 HxW: mode L


def make_ade20k(root: str, num_train: int = 4, num_val: int = 2,
                seed: int = 0) -> str:
    """ADEChallengeData2016 layout; returns ``root``."""
    rng = np.random.default_rng(seed)
    for split, count in (('training', num_train), ('validation', num_val)):
        for i in range(count):
            name = f'ADE_{split[:5]}_{i + 1:08d}'
            image, label = synthetic_pair(rng, ADE_LABELS, ignore=0)
            _save(image, label,
                  osp.join(root, 'images', split, name + '.jpg'),
                  osp.join(root, 'annotations', split, name + '.png'))
    return root


def make_cityscapes(root: str, num_train: int = 4, num_val: int = 2,
                    seed: int = 1) -> str:
    """Cityscapes layout (``leftImg8bit`` / ``gtFine`` labelTrainIds, one
    folder per city); returns ``root``."""
    rng = np.random.default_rng(seed)
    cities = {'train': ('aachen', 'bochum'), 'val': ('frankfurt', )}
    for split, count in (('train', num_train), ('val', num_val)):
        for i in range(count):
            city = cities[split][i % len(cities[split])]
            stem = f'{city}_{i:06d}_000019'
            image, label = synthetic_pair(rng, CITYSCAPES_LABELS, ignore=255)
            _save(
                image, label,
                osp.join(root, 'leftImg8bit', split, city,
                         stem + '_leftImg8bit.png'),
                osp.join(root, 'gtFine', split, city,
                         stem + '_gtFine_labelTrainIds.png'))
    return root


def make_labelme_voc(root: str, source: str = LABELME_VOC) -> List[str]:
    """Copy labelme's VOC example (3 photos) into a Pascal VOC layout that
    ``PascalVOCDataset`` reads; every photo is in ``train.txt`` and
    ``val.txt``. Returns the image ids."""
    names = sorted(
        osp.splitext(f)[0]
        for f in os.listdir(osp.join(source, 'JPEGImages'))
        if f.endswith('.jpg'))
    os.makedirs(osp.join(root, 'JPEGImages'), exist_ok=True)
    os.makedirs(osp.join(root, 'SegmentationClass'), exist_ok=True)
    os.makedirs(osp.join(root, 'ImageSets', 'Segmentation'), exist_ok=True)
    for name in names:
        shutil.copy(
            osp.join(source, 'JPEGImages', name + '.jpg'),
            osp.join(root, 'JPEGImages', name + '.jpg'))
        # palette PNG: the pixel values are the class indices (255: border)
        shutil.copy(
            osp.join(source, 'SegmentationClassPNG', name + '.png'),
            osp.join(root, 'SegmentationClass', name + '.png'))
    for split in ('train', 'val'):
        with open(osp.join(root, 'ImageSets', 'Segmentation', split + '.txt'),
                  'w') as f:
            f.write('\n'.join(names) + '\n')
    return names


VOC_OVERFIT_CONFIG = """\
# Overfit a small DynOPool FCN on labelme's three VOC photos (test config,
# written by tests/tools/seg_data.py). Everything not set here comes from
# the real ADE20K recipe: DynOPoolEncoderDecoder with the GMACs budget loss,
# DynOPoolResNetV1c, DynOPoolOptimWrapperConstructor, DynOPoolRatioHook.
_base_ = {base!r}
data_root = {data_root!r}
num_classes = 21
scale = {scale!r}  # (w, h) bound of Resize(keep_ratio=True)
pad = ({scale[1]}, {scale[0]})  # (h, w) the batch is padded to
c = {base_channels}
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=pad),
    backbone=dict(
        depth=18, stem_channels=c, base_channels=c, init_cfg=None,
        norm_cfg=dict(type='BN', requires_grad=True)),
    decode_head=dict(
        in_channels=8 * c, channels=2 * c, num_classes=num_classes,
        norm_cfg=dict(type='BN', requires_grad=True)),
    auxiliary_head=dict(
        in_channels=4 * c, channels=c, num_classes=num_classes,
        norm_cfg=dict(type='BN', requires_grad=True)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
dataset = dict(
    type='PascalVOCDataset', data_root=data_root,
    data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'))
train_dataloader = dict(
    batch_size=3, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        dataset, ann_file='ImageSets/Segmentation/train.txt',
        pipeline=train_pipeline, _delete_=True))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        dataset, ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline, _delete_=True))
test_dataloader = val_dataloader
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr={lr}, weight_decay=1e-4, _delete_=True),
    paramwise_cfg=dict(alpha_lr_mult={alpha_lr_mult}))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end={iters},
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters={iters},
                 val_interval={iters})
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval={iters}))
custom_hooks = [dict(type='DynOPoolRatioHook', interval=10)]
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
"""


def voc_overfit_config(path: str, data_root: str, iters: int = 150,
                       scale: Tuple[int, int] = (160, 120),
                       base_channels: int = 32, lr: float = 2e-3,
                       alpha_lr_mult: float = 0.1) -> str:
    """Write the VOC overfit config (see ``VOC_OVERFIT_CONFIG``) to ``path``
    and return ``path``."""
    with open(path, 'w') as f:
        f.write(
            VOC_OVERFIT_CONFIG.format(
                base=ADE_CONFIG, data_root=data_root, scale=tuple(scale),
                base_channels=base_channels, lr=lr,
                alpha_lr_mult=alpha_lr_mult, iters=iters))
    return path


def tiny_seg_options(data_root: str,
                     crop: Tuple[int, int] = (64, 64),
                     max_iters: int = 6,
                     val_interval: Optional[int] = None,
                     ckpt_interval: Optional[int] = None,
                     batch_size: int = 2,
                     depth: int = 18,
                     base_channels: int = 16,
                     head_channels: int = 16,
                     resize: Tuple[int, int] = IMAGE_SIZE[::-1],
                     log_interval: int = 1) -> List[str]:
    """``--cfg-options`` that shrink an ``fcn_dynopool-r50-d8`` recipe (ADE20K
    or Cityscapes) to a test-size model on a tiny dataset.

    ResNetV1c-18 with ``base_channels`` channels (stage outputs ``c, 2c, 4c,
    8c``), no pretrained weights (no network), a ``crop`` training crop,
    ``resize`` (w, h) as the scale of every Resize/RandomResize (so images
    stay near their size), batch ``batch_size``, no dataloader workers, and
    ``max_iters`` iterations with validation and a checkpoint at the end.
    """
    c = base_channels
    val_interval = val_interval or max_iters
    ckpt_interval = ckpt_interval or max_iters
    w, h = resize
    crop_h, crop_w = crop
    options = [
        'model.pretrained=None',
        'model.backbone.init_cfg=None',
        f'model.backbone.depth={depth}',
        f'model.backbone.stem_channels={c}',
        f'model.backbone.base_channels={c}',
        f'model.decode_head.in_channels={8 * c}',
        f'model.decode_head.channels={head_channels}',
        f'model.auxiliary_head.in_channels={4 * c}',
        f'model.auxiliary_head.channels={head_channels}',
        f'model.data_preprocessor.size=({crop_h},{crop_w})',
        f'train_cfg.max_iters={max_iters}',
        f'train_cfg.val_interval={val_interval}',
        f'default_hooks.checkpoint.interval={ckpt_interval}',
        f'default_hooks.logger.interval={log_interval}',
        f'custom_hooks.0.interval={log_interval}',
        # SegVisualizationHook draws every 50th image (when drawing is on,
        # e.g. test.py --show-dir): every image of a tiny set
        'default_hooks.visualization.interval=1',
        f'train_dataloader.batch_size={batch_size}',
        # train pipeline: Load, LoadAnnotations, RandomResize, RandomCrop, ...
        f'train_dataloader.dataset.pipeline.2.scale=({w},{h})',
        f'train_dataloader.dataset.pipeline.3.crop_size=({crop_h},{crop_w})',
        # val/test pipeline: Load, Resize, LoadAnnotations, Pack
        f'val_dataloader.dataset.pipeline.1.scale=({w},{h})',
        f'test_dataloader.dataset.pipeline.1.scale=({w},{h})',
        'env_cfg.cudnn_benchmark=False',
        'randomness.seed=0',
    ]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [
            f'{loader}.num_workers=0', f'{loader}.persistent_workers=False',
            f'{loader}.dataset.data_root={data_root}'
        ]
    return options


def bn_options() -> List[str]:
    """Plain BN instead of the recipes' SyncBN (torch's SyncBatchNorm only
    runs on accelerators; mmengine reverts it itself only when training is
    not distributed)."""
    return [
        f'model.{part}.norm_cfg.type=BN'
        for part in ('backbone', 'decode_head', 'auxiliary_head')
    ]


def subprocess_env() -> Dict[str, str]:
    """Environment of the tool subprocesses: the repo first on the path (so
    ``tests.tools.seg_data`` is this module), no network, one CPU thread per
    process unless ``OMP_NUM_THREADS`` is set (on a shared 2-core box two
    threads per process made the steps several times slower)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
    env.setdefault('HF_HUB_OFFLINE', '1')
    env.setdefault('OMP_NUM_THREADS', '1')
    env.setdefault('MKL_NUM_THREADS', '1')
    env['PYTHONWARNINGS'] = 'ignore'
    return env


def run_tool(args: Sequence[str], timeout: float = 120,
             env: Optional[Dict[str, str]] = None
             ) -> subprocess.CompletedProcess:
    """Run ``python <args>`` from the repo root; stdout and stderr merged."""
    return subprocess.run([sys.executable, *args],
                          cwd=REPO,
                          env=env or subprocess_env(),
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=timeout)


def check_ok(proc: subprocess.CompletedProcess) -> str:
    """The output of a finished subprocess; a failure shows its tail."""
    assert proc.returncode == 0, (
        f'exit code {proc.returncode}; last output:\n{proc.stdout[-6000:]}')
    return proc.stdout


def scalar_records(work_dir: str) -> List[dict]:
    """Every record of ``<work_dir>/<timestamp>/vis_data/scalars.json`` (the
    training and validation log of mmengine's LocalVisBackend), all runs."""
    records = []
    for stamp in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            with open(path) as f:
                records += [json.loads(line) for line in f if line.strip()]
    return records


def read_test_metrics(work_dir: str) -> dict:
    """The metrics ``tools/test.py`` wrote to ``<work_dir>/<ts>/<ts>.json``
    (the newest run)."""
    for stamp in sorted(os.listdir(work_dir), reverse=True):
        path = osp.join(work_dir, stamp, stamp + '.json')
        if osp.isfile(path):
            with open(path) as f:
                return json.load(f)
    raise FileNotFoundError(f'no <timestamp>/<timestamp>.json in {work_dir}')


def checkpoint_alphas(path: str) -> Dict[str, List[float]]:
    """``{parameter name: [alpha_h, alpha_w]}`` of every DynOPool in an
    mmengine checkpoint."""
    import torch
    state = torch.load(path, map_location='cpu', weights_only=False)
    return {
        k: v.tolist()
        for k, v in state['state_dict'].items() if k.endswith('.alpha')
    }


def model_alphas(model) -> Dict[str, List[float]]:
    """Same names as :func:`checkpoint_alphas`, from a live model."""
    from mmdynopool.ops import DynOPool
    return {
        f'{name}.alpha': module.alpha.detach().cpu().tolist()
        for name, module in model.named_modules()
        if isinstance(module, DynOPool)
    }


# --------------------------------------------------------------------------
# A hook for the subprocesses (built from the config by its dotted path,
# ``type='tests.tools.seg_data.RankAlphaRatioHook'``).
try:
    from mmdynopool.engine.hooks.ratio_hook import DynOPoolRatioHook, unwrap
except ImportError:  # pragma: no cover - only the data builders are needed
    DynOPoolRatioHook = object


class RankAlphaRatioHook(DynOPoolRatioHook):
    """:class:`DynOPoolRatioHook` that also writes, on every rank,
    ``<work_dir>/alpha_rank<rank>.json``: ``{"before_train": {"iter",
    "alpha"}, "after_train": {"iter", "alpha"}}`` with ``alpha`` as
    :func:`model_alphas` (``before_train`` runs after ``--resume`` loaded
    the checkpoint)."""

    def _dump(self, runner, stage: str) -> None:
        path = osp.join(runner.work_dir, f'alpha_rank{runner.rank}.json')
        data = {}
        if osp.isfile(path) and stage != 'before_train':
            with open(path) as f:
                data = json.load(f)
        data[stage] = dict(
            iter=runner.iter,
            world_size=runner.world_size,
            alpha=model_alphas(unwrap(runner.model)))
        os.makedirs(runner.work_dir, exist_ok=True)
        with open(path, 'w') as f:
            json.dump(data, f, indent=1)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._dump(runner, 'before_train')

    def after_train(self, runner) -> None:
        super().after_train(runner)
        self._dump(runner, 'after_train')
