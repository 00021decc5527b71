"""tools/analysis_tools/get_flops.py on the project's configs."""
import importlib.util
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

from mmdynopool.ops import DynOPool
from tests.conftest import requires_cpu_kernels

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis_tools', 'get_flops.py')
FCN_ADE = osp.join(ROOT, 'configs', 'dynopool',
                   'fcn_dynopool-r50-d8_4xb4-80k_ade20k-512x512.py')
SEGFORMER_ADE = osp.join(
    ROOT, 'configs', 'dynopool',
    'segformer_dynopool-mit-b0_8xb2-160k_ade20k-512x512.py')
# A ResNetV1c-18 with 8 base channels and thin heads: the config's
# structure (all DynOPools, budget loss) at a fraction of the cost.
SMALL_FCN = [
    'model.backbone.depth=18', 'model.backbone.stem_channels=8',
    'model.backbone.base_channels=8', 'model.decode_head.in_channels=64',
    'model.decode_head.channels=8', 'model.auxiliary_head.in_channels=32',
    'model.auxiliary_head.channels=8'
]
SMALL_MIT = [
    'model.backbone.embed_dims=8', 'model.backbone.num_heads=[1,1,2,2]',
    'model.backbone.num_layers=[1,1,1,1]',
    'model.decode_head.in_channels=[8,8,16,16]',
    'model.decode_head.channels=8'
]


def load_tool():
    spec = importlib.util.spec_from_file_location('get_flops', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def get_flops():
    return load_tool()


@pytest.fixture
def no_network(monkeypatch):
    """Fail any attempt to open a connection (pretrained downloads)."""

    def refuse(*args, **kwargs):
        raise AssertionError('get_flops must not touch the network')

    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)


def test_counts_at_initialisation(get_flops, no_network, capsys):
    results = get_flops.main(
        [FCN_ADE, '--shape', '64', '48', '--cfg-options', *SMALL_FCN])
    init = results['init']
    assert init['gmacs'] > 0 and init['params_m'] > 0
    rows = init['dynopools']
    assert list(rows) == [
        'backbone.stem.2.dynopool', 'backbone.maxpool',
        'backbone.layer2.0.dynopool', 'backbone.layer3.0.dynopool',
        'backbone.layer4.0.dynopool'
    ]
    assert rows['backbone.stem.2.dynopool']['input'] == (64, 48)
    assert rows['backbone.stem.2.dynopool']['output'] == (32, 24)
    assert rows['backbone.layer4.0.dynopool']['output'] == (8, 6)
    assert rows['backbone.layer3.0.dynopool']['r_h'] == 1.0
    out = capsys.readouterr().out
    assert 'model.pretrained set to None' in out
    assert 'GMACs' in out and 'backbone.layer2.0.dynopool' in out


def test_counts_at_learned_ratios_of_a_checkpoint(get_flops, no_network,
                                                  tmp_path, capsys):
    cfg_args = ['--cfg-options', *SMALL_FCN]
    # Build the model the tool will build, learn a smaller stage, save.
    cfg = get_flops.Config.fromfile(FCN_ADE)
    cfg.merge_from_dict(get_flops.parse_args([FCN_ADE, *cfg_args]).cfg_options)
    model, _ = get_flops.build_model(cfg)
    with torch.no_grad():
        model.backbone.layer2[0].dynopool.alpha.copy_(
            torch.tensor([1 / 0.25, 1 / 0.5]))
    checkpoint = tmp_path / 'iter_100.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)

    results = get_flops.main(
        [FCN_ADE, '--checkpoint', str(checkpoint), '--shape', '64', *cfg_args])
    learned = results['checkpoint']['dynopools']['backbone.layer2.0.dynopool']
    assert (learned['r_h'], learned['r_w']) == pytest.approx((0.25, 0.5))
    assert learned['input'] == (16, 16) and learned['output'] == (4, 8)
    initial = results['init']['dynopools']['backbone.layer2.0.dynopool']
    assert initial['output'] == (8, 8)
    # Smaller later stages, fewer MACs; same parameters.
    assert results['checkpoint']['gmacs'] < results['init']['gmacs']
    assert results['checkpoint']['params_m'] == results['init']['params_m']
    assert 'GMACs learned / initial' in capsys.readouterr().out


@pytest.mark.parametrize(
    'backend', ['torch',
                pytest.param('cpu', marks=requires_cpu_kernels), 'triton'])
def test_dynopool_is_counted(get_flops, monkeypatch, backend):
    """The DynOPool op (an autograd function in the trace, any
    backend's) is counted as its resampling, not skipped."""
    if backend == 'triton':
        pytest.importorskip('triton')
    monkeypatch.setenv('MMDYNOPOOL_BACKEND', backend)
    layer = DynOPool((0.5, 0.75))
    result = get_flops.count_complexity(layer, (8, 8), in_channels=2)
    assert result['gmacs'] * 1e9 == 16 * 2 * 4 * 6
    row = result['dynopools']['']
    assert (row['r_h'], row['r_w']) == pytest.approx((0.5, 0.75))
    assert (row['input'], row['output']) == ((8, 8), (4, 6))


def test_remove_pretrained_finds_nested_sources(get_flops):
    model = dict(
        pretrained='open-mmlab://resnet50_v1c',
        backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='x.pth')),
        heads=[dict(init_cfg=[
            dict(type='Normal', std=0.01),
            dict(type='Pretrained', checkpoint='y.pth')
        ])],
        neck=dict(init_cfg=dict(type='Kaiming')))
    removed = get_flops.remove_pretrained(model)
    assert removed == [
        'model.pretrained', 'model.backbone.init_cfg',
        'model.heads[0].init_cfg'
    ]
    assert model['pretrained'] is None
    assert model['backbone']['init_cfg'] is None
    assert model['neck']['init_cfg'] == dict(type='Kaiming')


def test_command_line_on_segformer_config():
    result = subprocess.run(
        [
            sys.executable, TOOL, SEGFORMER_ADE, '--shape', '64',
            '--cfg-options', *SMALL_MIT
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'model.backbone.init_cfg set to None' in result.stdout
    assert 'backbone.layers.0.0.projection.dynopool' in result.stdout
    assert '16x16' in result.stdout  # stage 1 output at r = 1/4
