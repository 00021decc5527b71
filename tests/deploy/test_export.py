"""Export of frozen DynOPool models: the exact integer size rule on symbolic
shapes, torch.export with dynamic H/W, ONNX round trips with onnxruntime at
two (and more) sizes, and tools/deployment/export_onnx.py."""
import importlib.util
import math
import os.path as osp
import random

import pytest
import torch
import torch.nn as nn

from mmdynopool.deploy import (check_onnx, export_onnx, freeze_dynopool,
                               second_shape, static_gmacs)
from mmdynopool.ops import DynOPool, StaticDynOPool
from mmdynopool.ops.functional import output_size
from mmdynopool.ops.static import (alpha_fraction, float32_alpha,
                                   snap_ratio, symbolic_output_size)
from ._models import SEGMENTOR, ToyNet, build_segmentor, build_sr

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ATOL = 1e-4

requires_onnx = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None
        for m in ('onnx', 'onnxruntime', 'onnxscript')),
    reason='needs the deploy extra: pip install -e ".[deploy]"')


# -- the size rule ------------------------------------------------------------
def test_integer_size_rule_equals_the_eager_rule():
    """(2*Q*H + P) // (2*P) with alpha = P/Q is round_half_up(H / alpha),
    exactly as eager mode's double-precision rule, for learned (float32)
    alphas over the whole ratio range, half-way cases included."""
    rng = random.Random(0)
    alphas = [rng.uniform(1 / 4, 16) for _ in range(150)]
    alphas += [0.5, 2.0, 4.0, 6.0, 10.0, 12.0, 14.0, 16.0, 0.25, 1.0, 1.5,
               3.0, 0.75, 1 / 3, 2 / 3, 1 / 0.37, 1 / 1.45]
    for alpha in alphas:
        ratio = snap_ratio(1.0 / alpha)
        p, q = alpha_fraction(ratio)
        assert p / q == float32_alpha(ratio) == float32_alpha(1.0 / alpha)
        for min_size in (1, 3):
            for h in range(1, 1200):
                assert symbolic_output_size(h, ratio, min_size) == \
                    output_size(h, ratio, min_size), (alpha, h, min_size)


def test_static_ratio_is_the_layers_ratio():
    layer = DynOPool((0.37, 1.45))
    assert layer.to_static().ratio == layer.ratio
    assert StaticDynOPool((0.37, 1.45)).ratio == layer.ratio
    assert StaticDynOPool(0.37).ratio[0] == pytest.approx(0.37, rel=1e-7)


def test_torch_export_with_dynamic_height_and_width():
    model = freeze_dynopool(ToyNet().eval())
    dims = {2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    program = torch.export.export(
        model, (torch.randn(1, 3, 32, 40), ), dynamic_shapes=(dims, ))
    code = program.graph_module.code
    assert 'sym_float' not in code and 'floordiv' in code  # integer rule
    exported = program.module()
    # (torch.export assumes no size is 1; the ONNX model has no such
    # assertion and handles it, see test_onnx_round_trip_toynet)
    for shape in [(32, 40), (57, 23), (5, 7), (101, 64)]:
        x = torch.randn(1, 3, *shape)
        torch.testing.assert_close(exported(x), model(x), rtol=0, atol=0)


# -- ONNX round trips ---------------------------------------------------------
def assert_round_trip(results):
    for result in results:
        assert result['onnx_output_shape'] == result['output_shape'], result
        assert result['max_abs_diff'] <= ATOL, result


@requires_onnx
def test_onnx_round_trip_toynet(tmp_path):
    model = ToyNet().eval()
    with torch.no_grad():
        model.pool1.alpha.mul_(torch.tensor([1.09, 0.93]))
    out = export_onnx(model, str(tmp_path / 'toy.onnx'), (32, 40))
    assert isinstance(model.pool1, DynOPool)  # exported a frozen copy
    shapes = [(32, 40), second_shape((32, 40)), (57, 23), (4, 4)]
    results = check_onnx(out, model, shapes)
    assert_round_trip(results)
    assert [r['output_shape'][2:] for r in results][:2] == [
        tuple(model.pool2.output_size(*model.pool1.output_size(32, 40))),
        tuple(model.pool2.output_size(*model.pool1.output_size(25, 51)))
    ]


@requires_onnx
def test_onnx_round_trip_dynamic_batch(tmp_path):
    model = ToyNet().eval()
    out = export_onnx(model, str(tmp_path / 'toy.onnx'), (24, 24),
                      batch_size=2)
    assert_round_trip(check_onnx(out, model, [(24, 24)], batch_size=3))


@requires_onnx
def test_onnx_round_trip_segmentor(tmp_path):
    model = build_segmentor()
    out = export_onnx(model, str(tmp_path / 'seg.onnx'), (48, 40))
    results = check_onnx(out, model, [(48, 40), (37, 53)])
    assert_round_trip(results)
    # logits at the input size, one channel per class
    assert [r['output_shape'] for r in results] == [(1, 4, 48, 40),
                                                    (1, 4, 37, 53)]


@requires_onnx
def test_onnx_round_trip_sr_model(tmp_path):
    model = build_sr()
    out = export_onnx(model, str(tmp_path / 'sr.onnx'), (12, 12))
    results = check_onnx(out, model, [(12, 12), (13, 17)])
    assert_round_trip(results)
    assert [r['output_shape'] for r in results] == [(1, 3, 48, 48),
                                                    (1, 3, 52, 68)]


class ShapeBranch(nn.Module):
    """A Python branch on a feature size: traced once, at the example."""

    def __init__(self):
        super().__init__()
        self.pool = StaticDynOPool(0.5)

    def forward(self, x):
        y = self.pool(x)
        if y.shape[-1] * 2 == x.shape[-1]:
            return y
        return y + 1


@requires_onnx
def test_check_catches_a_branch_specialised_to_the_traced_size(tmp_path):
    model = ShapeBranch()
    out = export_onnx(model, str(tmp_path / 'branch.onnx'), (16, 16))
    ok, odd = check_onnx(out, model, [(16, 16), (15, 15)])
    assert ok['max_abs_diff'] <= ATOL
    assert odd['max_abs_diff'] > 0.5  # the check at a second size fails


def test_static_gmacs_counts_the_frozen_model():
    model = ToyNet().eval()
    gmacs = static_gmacs(model, (32, 40))
    h1, w1 = model.pool1.output_size(32, 40)
    h2, w2 = model.pool2.output_size(h1, w1)
    convs = 32 * 40 * 8 * 27 + h1 * w1 * 8 * 72 + h2 * w2 * 2 * 8
    assert gmacs['conv_gmacs'] * 1e9 == convs
    # + 16 MACs per DynOPool output element (4 bilinear query points)
    assert gmacs['gmacs'] * 1e9 >= convs + 16 * 8 * (h1 * w1 + h2 * w2)
    assert isinstance(model.pool1, DynOPool)  # counted on a frozen copy


# -- the tool -----------------------------------------------------------------
def write_config(path):
    path.write_text(f'default_scope = "mmseg"\ncrop_size = (48, 40)\n'
                    f'model = {SEGMENTOR!r}\n')
    return str(path)


@requires_onnx
def test_export_tool(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'export_onnx', osp.join(ROOT, 'tools', 'deployment',
                                'export_onnx.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    config = write_config(tmp_path / 'tiny_seg.py')
    ckpt = str(tmp_path / 'trained.pth')
    trained = build_segmentor()
    torch.save(dict(state_dict=trained.state_dict(), meta=dict()), ckpt)
    out = str(tmp_path / 'out' / 'model.onnx')
    result = tool.main([config, ckpt, '--out', out])
    printed = capsys.readouterr().out
    assert osp.isfile(out)
    assert result['shape'] == (48, 40)  # the config's crop size
    assert [c['shape'] for c in result['checks']] == [(48, 40), (37, 51)]
    assert all(c['max_abs_diff'] <= ATOL for c in result['checks'])
    assert 'backbone.stem.2.dynopool: r_h=0.5500 r_w=0.7000' in printed
    assert printed.count('max abs diff') == 2 and 'OK' in printed
    assert 'Static GMACs of the frozen model at 48x40' in printed
    assert result['gmacs'] > result['conv_gmacs'] > 0
    expected = static_gmacs(trained, (48, 40))
    assert math.isclose(result['gmacs'], expected['gmacs'])
