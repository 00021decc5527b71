"""The SR model wrapper for mmengine's runner: data preprocessing, pixel
and compute losses, predictions as data samples."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.registry import MODELS
from mmengine.structures import BaseDataElement
from torch import Tensor

ConfigType = Union[dict, nn.Module]


@MODELS.register_module()
class SRDataPreprocessor(BaseDataPreprocessor):
    """Stacks the LR inputs and the HR ``gt_img`` of the data samples into
    float batches in [0, 1] on the model's device.

    Training crops share one size; for evaluation on whole images of
    different sizes use ``batch_size=1``.
    """

    @staticmethod
    def stack(images: Sequence[Tensor], what: str) -> Tensor:
        shapes = {tuple(img.shape) for img in images}
        if len(shapes) > 1:
            raise ValueError(
                f'{what} images of one batch differ in size {sorted(shapes)}'
                '; use batch_size=1 for whole-image evaluation or crop them '
                'to one size (PairedRandomCrop)')
        return torch.stack(list(images)).float() / 255.0

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            inputs = self.stack(inputs, 'LR')
        elif not inputs.is_floating_point():
            inputs = inputs.float() / 255.0
        samples = data.get('data_samples')
        for sample in samples or []:
            if 'gt_img' in sample and not sample.gt_img.is_floating_point():
                sample.gt_img = sample.gt_img.float() / 255.0
        return dict(inputs=inputs, data_samples=samples)


@MODELS.register_module()
class PixelLoss(nn.Module):
    """Pixel reconstruction loss.

    Args:
        criterion (str): ``'l1'`` (EDSR), ``'mse'`` or ``'charbonnier'``.
        loss_weight (float): Weight. Default: 1.0.
        eps (float): Charbonnier epsilon. Default: 1e-6.
    """

    def __init__(self,
                 criterion: str = 'l1',
                 loss_weight: float = 1.0,
                 eps: float = 1e-6) -> None:
        super().__init__()
        if criterion not in ('l1', 'mse', 'charbonnier'):
            raise ValueError("criterion must be 'l1', 'mse' or "
                             f"'charbonnier', got {criterion!r}")
        self.criterion = criterion
        self.loss_weight = loss_weight
        self.eps = eps

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if self.criterion == 'l1':
            loss = F.l1_loss(pred, target)
        elif self.criterion == 'mse':
            loss = F.mse_loss(pred, target)
        else:
            loss = torch.sqrt((pred - target)**2 + self.eps).mean()
        return self.loss_weight * loss


@MODELS.register_module()
class SRModel(BaseModel):
    """Super-resolution model: a generator (LR -> HR in [0, 1]) trained
    with a pixel loss and, optionally, DynOPool's compute-budget loss.

    Forward modes: ``'loss'`` -> ``{'loss_pix', 'loss_gmacs'?}``;
    ``'predict'`` -> the data samples with ``pred_img`` ``(3, H, W)`` in
    [0, 1]; ``'tensor'`` -> the raw generator output.

    Args:
        generator (dict | nn.Module): e.g. ``dict(type='EDSRDynOPoolNet',
            scale=4)``, ``'EDSRNet'``, ``'DynOPoolEncDecSRNet'`` or
            ``'BicubicUpsampler'``.
        pixel_loss (dict): Default: ``dict(type='PixelLoss',
            criterion='l1')``.
        budget_loss (dict, optional): e.g. ``dict(type='GMACsLoss',
            loss_weight=0.1, target_ratio=1.0)``; attached to the generator
            so it counts the generator's MACs per image.
        data_preprocessor (dict, optional): Default:
            ``dict(type='SRDataPreprocessor')``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 generator: ConfigType,
                 pixel_loss: Optional[ConfigType] = None,
                 budget_loss: Optional[ConfigType] = None,
                 data_preprocessor: Optional[ConfigType] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor
                         or dict(type='SRDataPreprocessor'),
                         init_cfg=init_cfg)
        self.generator = self.build(generator)
        if not hasattr(self.generator, 'scale'):
            raise ValueError('the generator must have a `scale` attribute '
                             '(its upscaling factor)')
        self.scale = self.generator.scale
        self.pixel_loss = self.build(pixel_loss
                                     or dict(type='PixelLoss', criterion='l1'))
        self.budget_loss = None
        if budget_loss is not None:
            self.budget_loss = self.build(budget_loss)
            self.budget_loss.attach(self.generator)

    @staticmethod
    def build(cfg: ConfigType) -> nn.Module:
        return cfg if isinstance(cfg, nn.Module) else MODELS.build(cfg)

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor'):
        if mode == 'tensor':
            return self.generator(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got "
                         f'{mode!r}')

    def gt_batch(self, data_samples: Optional[List[BaseDataElement]],
                 pred: Tensor) -> Tensor:
        if not data_samples or 'gt_img' not in data_samples[0]:
            raise ValueError("mode='loss' needs data samples with gt_img")
        gt = torch.stack([sample.gt_img for sample in data_samples])
        if gt.shape != pred.shape:
            raise ValueError(
                f'the HR images {tuple(gt.shape)} are not x{self.scale} the '
                f'LR inputs (prediction {tuple(pred.shape)}); check the '
                "dataset's scale against the model's")
        return gt

    def loss(self, inputs: Tensor,
             data_samples: List[BaseDataElement]) -> Dict[str, Tensor]:
        if not any(p.requires_grad for p in self.generator.parameters()):
            raise RuntimeError(
                f'{type(self.generator).__name__} has no trainable '
                'parameters; use it with tools/test.py only')
        pred = self.generator(inputs)
        losses = dict(
            loss_pix=self.pixel_loss(pred, self.gt_batch(data_samples, pred)))
        if self.budget_loss is not None:
            losses[self.budget_loss.loss_name] = self.budget_loss()
        return losses

    def predict(
        self,
        inputs: Tensor,
        data_samples: Optional[List[BaseDataElement]] = None
    ) -> List[BaseDataElement]:
        pred = self.generator(inputs).clamp(0, 1)
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(len(pred))]
        for sample, img in zip(data_samples, pred):
            sample.pred_img = img
        return data_samples
