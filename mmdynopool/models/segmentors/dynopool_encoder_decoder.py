"""EncoderDecoder with the paper's compute-budget loss."""
from typing import Optional

from mmengine.registry import MODELS
from mmseg.models.segmentors import EncoderDecoder
from mmseg.utils import OptConfigType, SampleList
from torch import Tensor


@MODELS.register_module()
class DynOPoolEncoderDecoder(EncoderDecoder):
    """mmseg's EncoderDecoder plus a GMACs budget term for DynOPool models.

    Larger feature maps usually help accuracy, so on their own the learned
    DynOPool ratios drift upwards; the budget loss (Jang et al., CVPR 2022)
    adds the model's current GMACs per image, differentiable w.r.t. every
    DynOPool's ``alpha``, to the task losses: ``L = L_seg + lambda *
    L_GMACs``, or a penalty on the excess over a GMACs target. It is
    reported as ``loss_gmacs`` (see :class:`~mmdynopool.models.GMACsLoss`).

    Everything else is :class:`mmseg.models.segmentors.EncoderDecoder`:
    whole and slide inference resize the logits to the input size, so the
    decode heads work with the arbitrary (non-power-of-two, anisotropic)
    feature sizes that learned ratios produce.

    Args:
        budget_loss (dict, optional): Config of the budget loss, e.g.
            ``dict(type='GMACsLoss', loss_weight=0.01)`` or
            ``dict(type='GMACsLoss', loss_weight=1.0, target_ratio=1.0)``.
            It is attached to the whole segmentor (backbone, neck, decode
            head) except the training-only ``auxiliary_head``.
            Default: None (no budget term).
        **kwargs: Arguments of :class:`mmseg.models.segmentors.EncoderDecoder`
            (``backbone``, ``decode_head``, ``neck``, ``auxiliary_head``,
            ``train_cfg``, ``test_cfg``, ``data_preprocessor``,
            ``pretrained``, ``init_cfg``).
    """

    def __init__(self, budget_loss: OptConfigType = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if budget_loss is not None and not isinstance(budget_loss, dict):
            raise TypeError(
                'budget_loss must be a config dict such as '
                "dict(type='GMACsLoss', loss_weight=0.01) or None (off), got "
                f'{type(budget_loss).__name__}')
        self.budget_loss = None
        if budget_loss is not None:
            self.budget_loss = MODELS.build(budget_loss)
            # Built last, so its hooks see every layer of the segmentor.
            self.budget_loss.attach(self)

    @property
    def with_budget_loss(self) -> bool:
        return self.budget_loss is not None

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """The segmentation losses of mmseg plus ``loss_gmacs`` of this
        forward when a budget loss is configured."""
        if self.with_budget_loss:
            # A direct call (not through forward) must not add to the
            # record of the previous forward.
            self.budget_loss.recorder.start(inputs)
        losses = super().loss(inputs, data_samples)
        if self.with_budget_loss:
            losses[self.budget_loss.loss_name] = self.budget_loss()
        return losses

    @property
    def current_gmacs(self) -> Optional[float]:
        """GMACs per image of the last forward (None without budget loss)."""
        return self.budget_loss.current_gmacs if self.with_budget_loss \
            else None
