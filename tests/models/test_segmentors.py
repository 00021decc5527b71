"""DynOPoolEncoderDecoder: mmseg heads on learned feature sizes, and the
compute-budget loss."""
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import MODELS, init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmdynopool.models.segmentors import DynOPoolEncoderDecoder
from mmdynopool.ops import DynOPool

from tests.tiny_segmentor import NORM, NUM_CLASSES, RESNET_D8, FCN_HEAD
from tests.tiny_segmentor import DATA_PREPROCESSOR as BASE_PREPROCESSOR

DATA_PREPROCESSOR = dict(BASE_PREPROCESSOR, size_divisor=8)
AUX_HEAD = dict(
    type='FCNHead',
    in_channels=32,
    in_index=2,
    channels=8,
    num_convs=1,
    concat_input=False,
    num_classes=NUM_CLASSES,
    norm_cfg=NORM,
    loss_decode=dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4))
SEP_ASPP_HEAD = dict(
    type='DepthwiseSeparableASPPHead',
    in_channels=64,
    in_index=3,
    channels=16,
    dilations=(1, 12, 24, 36),
    c1_in_channels=8,
    c1_channels=8,
    num_classes=NUM_CLASSES,
    norm_cfg=NORM)
MIT = dict(
    type='DynOPoolMixVisionTransformer',
    embed_dims=8,
    num_layers=[1, 1, 1, 1],
    num_heads=[1, 1, 2, 2])
SEGFORMER_HEAD = dict(
    type='SegformerHead',
    in_channels=[8, 8, 16, 16],
    in_index=[0, 1, 2, 3],
    channels=8,
    num_classes=NUM_CLASSES,
    norm_cfg=NORM)
BUDGET = dict(type='GMACsLoss', loss_weight=1.0)


def build_segmentor(backbone=RESNET_D8, decode_head=FCN_HEAD,
                    auxiliary_head=None, budget_loss=None, test_cfg=None):
    init_default_scope('mmseg')
    model = MODELS.build(
        dict(
            type='DynOPoolEncoderDecoder',
            data_preprocessor=DATA_PREPROCESSOR,
            backbone=backbone,
            decode_head=decode_head,
            auxiliary_head=auxiliary_head,
            budget_loss=budget_loss,
            train_cfg=ConfigDict(),
            test_cfg=ConfigDict(test_cfg or dict(mode='whole'))))
    return model


def set_ratios(model, ratios):
    """Give the DynOPools, in network order, the ratios ``(r_h, r_w)``."""
    pools = [m for m in model.modules() if isinstance(m, DynOPool)]
    assert len(pools) == len(ratios)
    with torch.no_grad():
        for pool, (r_h, r_w) in zip(pools, ratios):
            pool.alpha.copy_(torch.tensor([1.0 / r_h, 1.0 / r_w]))
    return pools


# Anisotropic, non-power-of-two; one stage upsamples.
RESNET_RATIOS = [(0.55, 0.7), (0.5, 0.6), (0.8, 0.45), (1.3, 0.9),
                 (0.7, 1.2)]
MIT_RATIOS = [(0.3, 0.2), (0.6, 0.45), (0.55, 0.7), (0.8, 0.5)]


def make_batch(h, w, n=2):
    inputs = [torch.randint(0, 256, (3, h, w)).float() for _ in range(n)]
    data_samples = []
    for _ in range(n):
        sample = SegDataSample(
            metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                          pad_shape=(h, w)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, NUM_CLASSES, (1, h, w)))
        data_samples.append(sample)
    return dict(inputs=inputs, data_samples=data_samples)


def run(model, batch, mode):
    data = model.data_preprocessor(batch, training=mode == 'loss')
    return model(**data, mode=mode)


@pytest.mark.parametrize('backbone,decode_head,ratios', [
    (RESNET_D8, FCN_HEAD, RESNET_RATIOS),
    (RESNET_D8, SEP_ASPP_HEAD, RESNET_RATIOS),
    (MIT, SEGFORMER_HEAD, MIT_RATIOS),
],
                         ids=['fcn', 'deeplabv3plus', 'segformer'])
@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_predictions_at_input_resolution(backbone, decode_head, ratios,
                                         mode):
    test_cfg = dict(mode='whole') if mode == 'whole' else dict(
        mode='slide', crop_size=(40, 48), stride=(30, 42))  # 2x2 crops
    model = build_segmentor(backbone, decode_head, test_cfg=test_cfg)
    model.eval()
    set_ratios(model, ratios)
    results = run(model, make_batch(70, 90, n=1), 'predict')
    for result in results:
        assert result.seg_logits.data.shape == (NUM_CLASSES, 70, 90)
        assert result.pred_sem_seg.data.shape == (1, 70, 90)


def test_deeplabv3plus_fuses_at_c1_size():
    model = build_segmentor(decode_head=SEP_ASPP_HEAD)
    model.eval()
    set_ratios(model, RESNET_RATIOS)
    feats = model.extract_feat(torch.rand(1, 3, 64, 80))
    c1, c4 = feats[0], feats[3]
    assert c1.shape[2:] != c4.shape[2:]
    fused = {}

    def record(module, args):
        fused['size'] = args[0].shape[2:]

    model.decode_head.sep_bottleneck.register_forward_pre_hook(record)
    logits = model.decode_head(feats)
    # The ASPP output is resized to c1's (learned) size before the fusion.
    assert fused['size'] == c1.shape[2:]
    assert logits.shape[2:] == c1.shape[2:]


def test_alpha_receives_gradient_from_segmentation_loss():
    model = build_segmentor(auxiliary_head=AUX_HEAD)
    model.train()
    pools = set_ratios(model, RESNET_RATIOS)
    losses = run(model, make_batch(48, 56), 'loss')
    assert set(losses) == {
        'decode.loss_ce', 'decode.acc_seg', 'aux.loss_ce', 'aux.acc_seg'
    }
    (losses['decode.loss_ce'] + losses['aux.loss_ce']).backward()
    for pool in pools:
        assert pool.alpha.grad is not None
        assert pool.alpha.grad.abs().sum() > 0


@pytest.mark.parametrize('budget_loss', [
    BUDGET,
    dict(type='GMACsLoss', loss_weight=2.0, target_ratio=0.5),
])
def test_budget_loss_in_loss_dict(budget_loss):
    model = build_segmentor(auxiliary_head=AUX_HEAD, budget_loss=budget_loss)
    model.train()
    assert model.with_budget_loss
    pools = set_ratios(model, RESNET_RATIOS)
    losses = run(model, make_batch(48, 56), 'loss')
    assert 'loss_gmacs' in losses
    loss = losses['loss_gmacs']
    assert loss.dim() == 0 and loss.requires_grad and loss > 0
    assert model.current_gmacs > 0
    # The budget term alone pulls every ratio down (alpha up).
    loss.backward()
    for pool in pools:
        assert (pool.alpha.grad < 0).all()


def test_budget_loss_tracks_learned_ratios():
    model = build_segmentor(budget_loss=BUDGET)
    model.train()
    set_ratios(model, [(0.5, 0.5)] * 3 + [(1.0, 1.0)] * 2)
    run(model, make_batch(64, 64), 'loss')
    initial = model.current_gmacs
    set_ratios(model, [(0.5, 0.5)] * 2 + [(0.25, 0.25)] + [(1.0, 1.0)] * 2)
    losses = run(model, make_batch(64, 64), 'loss')
    assert model.current_gmacs < initial
    assert losses['loss_gmacs'].item() == pytest.approx(model.current_gmacs)


def test_without_budget_loss():
    model = build_segmentor()
    model.train()
    assert not model.with_budget_loss and model.current_gmacs is None
    losses = run(model, make_batch(32, 32), 'loss')
    assert 'loss_gmacs' not in losses


def test_budget_loss_must_be_a_config():
    init_default_scope('mmseg')
    with pytest.raises(TypeError, match='budget_loss must be a config dict'):
        DynOPoolEncoderDecoder(
            backbone=RESNET_D8, decode_head=FCN_HEAD, budget_loss=0.01)


def test_checkpoint_round_trip_keeps_learned_ratios(tmp_path):
    model = build_segmentor(budget_loss=BUDGET)
    set_ratios(model, RESNET_RATIOS)
    torch.save(model.state_dict(), tmp_path / 'model.pth')
    restored = build_segmentor(budget_loss=BUDGET)
    restored.load_state_dict(torch.load(tmp_path / 'model.pth'))
    for a, b in zip(
        [m for m in model.modules() if isinstance(m, DynOPool)],
        [m for m in restored.modules() if isinstance(m, DynOPool)]):
        assert a.ratio == pytest.approx(b.ratio)
