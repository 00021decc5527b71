"""SR models: exact output sizes, learned ratios, losses, configs and a
short train/test run through tools/."""
import glob
import os
import os.path as osp
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from mmengine.structures import BaseDataElement

from mmdynopool.models.losses import MACsRecorder
from mmdynopool.models.sr import (DynOPoolEncDecSRNet, EDSRDynOPoolNet,
                                  EDSRNet, default_stage_ratios)
from mmdynopool.ops import DynOPool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'dynopool_sr')
SMALL = dict(mid_channels=8, num_blocks=1)


def generators(scale):
    return [
        EDSRNet(scale, **SMALL),
        EDSRDynOPoolNet(scale, **SMALL),
        DynOPoolEncDecSRNet(scale, mid_channels=8, num_blocks=1),
        MODELS.build(dict(type='BicubicUpsampler', scale=scale)),
    ]


@pytest.mark.parametrize('scale', [2, 3, 4])
@pytest.mark.parametrize('size', [(16, 16), (15, 9), (7, 13)])
def test_output_is_exactly_scale_times_input(scale, size):
    x = torch.rand(1, 3, *size)
    for net in generators(scale):
        out = net(x)
        assert out.shape == (1, 3, size[0] * scale, size[1] * scale), net


def test_default_stage_ratios():
    assert default_stage_ratios(2) == [2.0]
    assert default_stage_ratios(3) == [3.0]
    assert default_stage_ratios(4) == [2.0, 2.0]
    assert default_stage_ratios(8) == [2.0, 2.0, 2.0]
    net = EDSRDynOPoolNet(4, **SMALL)
    assert [p.ratio for p in net.upsample.pools] == [(2.0, 2.0)] * 2
    with pytest.raises(ValueError, match='multiply to 3.0, not the scale 4'):
        EDSRDynOPoolNet(4, stage_ratios=[1.5, 2.0], **SMALL)


def test_learned_ratios_off_target_still_give_exact_size():
    net = EDSRDynOPoolNet(4, **SMALL)
    with torch.no_grad():
        net.upsample.pools[0].alpha.copy_(torch.tensor([1 / 2.3, 1 / 1.7]))
    seen = []
    handle = net.upsample.convs[1].register_forward_hook(
        lambda m, i, o: seen.append(o.shape[-2:]))
    out = net(torch.rand(1, 3, 11, 10))
    handle.remove()
    # internal resolution follows the learned ratios ...
    assert tuple(seen[0]) == (round(2.3 * 11) * 2, round(1.7 * 10) * 2)
    # ... the output does not
    assert out.shape[-2:] == (44, 40)


def test_encdec_ratios_down_and_up():
    net = DynOPoolEncDecSRNet(2, mid_channels=8, channel_mults=(1, 2, 2))
    ratios = [p.ratio[0] for p in net.modules() if isinstance(p, DynOPool)]
    # two down stages, two up stages, one SR tail stage
    assert ratios == [0.5, 0.5, 2.0, 2.0, 2.0]


def sr_model(generator, budget=True):
    return MODELS.build(
        dict(type='SRModel',
             generator=generator,
             budget_loss=dict(type='GMACsLoss', loss_weight=0.1)
             if budget else None))


def batch(scale, n=2, h=9, w=11):
    inputs = torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8)
    samples = [
        BaseDataElement(gt_img=torch.randint(0,
                                             256, (3, h * scale, w * scale),
                                             dtype=torch.uint8),
                        metainfo=dict(scale=scale)) for _ in range(n)
    ]
    return dict(inputs=list(inputs), data_samples=samples)


@pytest.mark.parametrize('generator', [
    dict(type='EDSRDynOPoolNet', scale=4, **SMALL),
    dict(type='DynOPoolEncDecSRNet', scale=2, mid_channels=8, num_blocks=1),
])
def test_every_alpha_gets_a_gradient(generator):
    model = sr_model(generator)
    data = model.data_preprocessor(batch(generator['scale']), training=True)
    # move off r = 2 exactly, where the interpolant has a kink
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, DynOPool):
                module.alpha.mul_(0.97)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_pix', 'loss_gmacs'}
    assert model.budget_loss.current_gmacs > 0
    sum(losses.values()).backward()
    alphas = [m.alpha for m in model.modules() if isinstance(m, DynOPool)]
    assert alphas
    for alpha in alphas:
        assert alpha.grad is not None
        assert torch.isfinite(alpha.grad).all()
        assert alpha.grad.abs().sum() > 0


def test_predict_and_tensor_modes():
    model = sr_model(dict(type='EDSRNet', scale=2, **SMALL), budget=False)
    data = model.data_preprocessor(batch(2), training=False)
    assert data['inputs'].dtype == torch.float32
    assert 0 <= float(data['inputs'].min()) <= float(data['inputs'].max()) <= 1
    samples = model(**data, mode='predict')
    assert samples[0].pred_img.shape == (3, 18, 22)
    assert 0 <= float(samples[0].pred_img.min())
    assert float(samples[0].pred_img.max()) <= 1
    assert model(data['inputs'], mode='tensor').shape == (2, 3, 18, 22)
    with pytest.raises(ValueError, match="mode must be 'loss'"):
        model(data['inputs'], mode='nope')


def test_loss_checks_the_scale_of_the_data():
    model = sr_model(dict(type='EDSRNet', scale=4, **SMALL), budget=False)
    data = model.data_preprocessor(batch(2), training=True)
    with pytest.raises(ValueError, match="not x4 the LR inputs"):
        model(**data, mode='loss')


def test_bicubic_model_has_no_parameters_and_cannot_train():
    model = sr_model(dict(type='BicubicUpsampler', scale=2), budget=False)
    assert not list(model.parameters())
    data = model.data_preprocessor(batch(2), training=True)
    with pytest.raises(RuntimeError, match='no trainable parameters'):
        model(**data, mode='loss')
    const = torch.full((1, 3, 5, 6), 0.3)
    assert torch.allclose(model(const), torch.tensor(0.3), atol=1e-6)


def test_preprocessor_rejects_mixed_sizes():
    model = sr_model(dict(type='EDSRNet', scale=2, **SMALL), budget=False)
    data = batch(2)
    data['inputs'][1] = data['inputs'][1][:, :5]
    with pytest.raises(ValueError, match='batch_size=1'):
        model.data_preprocessor(data)


@pytest.mark.parametrize('scale', [2, 4])
def test_dynopool_tail_costs_the_same_as_pixel_shuffle_at_init(scale):
    x = torch.rand(1, 3, 12, 10)
    macs = []
    for net in (EDSRNet(scale, **SMALL), EDSRDynOPoolNet(scale, **SMALL)):
        recorder = MACsRecorder(net)
        net(x)
        macs.append(recorder.macs)
        recorder.remove()
    assert macs[0] == macs[1] > 0


def test_upsample_skip_starts_near_bicubic():
    net = EDSRNet(2, upsample_skip='bicubic', **SMALL)
    x = torch.rand(1, 3, 8, 8)
    up = torch.nn.functional.interpolate(x,
                                         scale_factor=2,
                                         mode='bicubic',
                                         align_corners=False)
    assert (net(x) - up).abs().mean() < 0.1
    with pytest.raises(ValueError, match='upsample_skip'):
        EDSRNet(2, upsample_skip='nearest')


def test_configs_build():
    configs = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
    assert len(configs) >= 8
    for path in configs:
        cfg = Config.fromfile(path)
        assert cfg.default_scope is None
        assert 'mmdynopool' in cfg.custom_imports['imports']
        model = MODELS.build(cfg.model)
        scale = model.scale
        assert f'x{scale}' in osp.basename(path), path
        if 'dynopool' in osp.basename(path):
            assert model.budget_loss is not None
            assert any(isinstance(m, DynOPool) for m in model.modules())
        hooks = [h['type'] for h in cfg.custom_hooks]
        assert cfg.train_cfg is None or 'DynOPoolRatioHook' in hooks


def write_folder(folder, sizes):
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                               (5, 5), 1)
        cv2.imwrite(osp.join(folder, f'{i:04d}.png'), img)


def test_train_then_test_through_tools(tmp_path):
    """2 iterations on a tiny DIV2K-like folder, validation and test on a
    tiny Set5-like folder, SR images saved by --show-dir."""
    data = tmp_path / 'data'
    write_folder(str(data / 'DIV2K' / 'DIV2K_train_HR'), [(40, 44)] * 2)
    for name in ('Set5', 'Set14'):
        write_folder(str(data / name / 'GTmod12'), [(24, 28)])
    config = osp.join(CONFIG_DIR, 'edsr-dynopool_x2c64b16_1xb16-300k_div2k.py')
    work_dir = tmp_path / 'work'
    options = [
        f'train_dataloader.dataset.data_root={data}/DIV2K',
        f'val_dataloader.dataset.datasets.0.data_root={data}/Set5',
        f'val_dataloader.dataset.datasets.1.data_root={data}/Set14',
        f'test_dataloader.dataset.datasets.0.data_root={data}/Set5',
        f'test_dataloader.dataset.datasets.1.data_root={data}/Set14',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
        'train_dataloader.dataset.pipeline.1.lr_patch_size=12',
        'model.generator.mid_channels=8', 'model.generator.num_blocks=1',
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2', 'custom_hooks.0.interval=1'
    ]
    env = dict(os.environ, OMP_NUM_THREADS='1')

    def run(*args):
        proc = subprocess.run([sys.executable, *args],
                              cwd=REPO,
                              env=env,
                              capture_output=True,
                              text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout + proc.stderr

    log = run('tools/train.py', config, '--work-dir', str(work_dir),
              '--cfg-options', *options)
    assert 'Set5/PSNR' in log and 'Set14/SSIM' in log
    assert osp.exists(work_dir / 'dynopool_ratios.json')
    checkpoint = work_dir / 'iter_2.pth'
    assert checkpoint.exists()
    show_dir = tmp_path / 'sr_pngs'
    log = run('tools/test.py', config, str(checkpoint), '--work-dir',
              str(work_dir), '--show-dir', str(show_dir), '--cfg-options',
              *options)
    assert 'Set5/PSNR' in log
    saved = sorted(glob.glob(str(show_dir / '*' / '*.png')))
    assert [osp.relpath(p, show_dir) for p in saved
            ] == [osp.join('Set14', '0000.png'),
                  osp.join('Set5', '0000.png')]
    assert cv2.imread(saved[0]).shape == (24, 28, 3)


def test_bicubic_baseline_tests_without_checkpoint(tmp_path):
    """``tools/test.py CONFIG none``: the parameter-free baseline."""
    data = tmp_path / 'data'
    for name in ('Set5', 'Set14'):
        write_folder(str(data / name / 'GTmod12'), [(24, 28)])
    config = osp.join(CONFIG_DIR, 'bicubic_x2_set5-set14.py')
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', config, 'none', '--work-dir',
         str(tmp_path / 'work'), '--cfg-options',
         f'test_dataloader.dataset.datasets.0.data_root={data}/Set5',
         f'test_dataloader.dataset.datasets.1.data_root={data}/Set14',
         'test_dataloader.num_workers=0'],
        cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS='1'),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r'Set5/PSNR: \d+\.\d+', proc.stdout + proc.stderr)
