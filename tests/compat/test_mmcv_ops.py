"""The mmcv-lite compatibility layer, in both worlds."""
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from mmdynopool.compat import (FULL_MMCV, MMCV_LITE, compiled_mmcv_available,
                               install_mmcv_ops_compat, mmcv_world)
from mmdynopool.compat.mmcv_ops import point_sample, sigmoid_focal_loss

lite_only = pytest.mark.skipif(
    compiled_mmcv_available(), reason='full mmcv installed: the lite shim '
    'is not in use (the full-mmcv path is tested by simulation below)')


REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120,
                          cwd=REPO)


@lite_only
def test_mmseg_imports_under_mmcv_lite():
    import mmcv.ops
    import mmseg.models  # noqa: F401  (fails without the shim)
    from mmseg.utils import mask_classification
    assert mmcv_world() == MMCV_LITE
    assert mmcv.ops.point_sample is point_sample
    assert mask_classification.point_sample is point_sample


def test_point_sample_is_bilinear_on_unit_coordinates():
    image = torch.arange(6.0).view(1, 1, 2, 3)  # rows [0 1 2], [3 4 5]
    # (x, y) in [0, 1]: pixel centres sit at (j + 0.5) / W, (i + 0.5) / H.
    points = torch.tensor([[[0.5 / 3, 0.25], [2.5 / 3, 0.75], [0.5, 0.5]]])
    out = point_sample(image, points)
    torch.testing.assert_close(out, torch.tensor([[[0.0, 5.0, 2.5]]]))
    grid_points = points.view(1, 1, 3, 2)
    assert point_sample(image, grid_points).shape == (1, 1, 1, 3)


@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
@pytest.mark.parametrize('use_weight', [False, True])
def test_sigmoid_focal_loss_matches_mmseg_python_version(
        reduction, use_weight):
    from mmseg.models.losses.focal_loss import py_sigmoid_focal_loss
    logits = torch.randn(12, 5, dtype=torch.float64)
    target = torch.randint(0, 6, (12, ))  # 5 means background
    class_weight = torch.rand(5, dtype=torch.float64) if use_weight else None
    ours = sigmoid_focal_loss(logits, target, 2.0, 0.25, class_weight,
                              reduction)
    one_hot = F.one_hot(target, 6)[:, :5].to(logits.dtype)
    expected = py_sigmoid_focal_loss(
        logits, one_hot, None, gamma=2.0, alpha=0.25, reduction='none')
    if use_weight:
        expected = expected * torch.cat([class_weight,
                                         class_weight.new_zeros(1)
                                         ])[target].unsqueeze(1)
    if reduction == 'mean':
        expected = expected.sum() / logits.size(0)
    elif reduction == 'sum':
        expected = expected.sum()
    torch.testing.assert_close(ours, expected)


@lite_only
@pytest.mark.parametrize('name', ['PSAMask', 'CrissCrossAttention',
                                  'DeformConv2d', 'SomeFutureOp'])
def test_compiled_only_ops_fail_at_call_time_with_the_fix(name):
    import mmcv.ops
    op = getattr(mmcv.ops, name)  # importing works
    with pytest.raises(ImportError, match=rf'{name}.*full mmcv'):
        op('psa', (8, 8))


@lite_only
def test_mmseg_head_needing_compiled_op_names_it():
    import mmseg.models  # noqa: F401  (registers the heads)
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'), pytest.raises(
            ImportError, match='PSAMask'):
        MODELS.build(
            dict(type='PSAHead', in_channels=8, channels=4, num_classes=2,
                 mask_size=(8, 8)))


def test_bad_world_is_rejected():
    with pytest.raises(ValueError, match='force_world'):
        install_mmcv_ops_compat(force_world='half-mmcv')


def test_full_mmcv_world_changes_nothing():
    """Simulate full mmcv: a compiled ``mmcv._ext`` and a real ``mmcv.ops``
    are importable; importing mmdynopool must leave them alone."""
    result = run_python("""
        import sys, types
        import mmcv
        ext = types.ModuleType('mmcv._ext')
        ops = types.ModuleType('mmcv.ops')
        ops.point_sample = 'compiled point_sample'
        # Every other op a compiled build has (mmseg imports several).
        def compiled_op(name):
            if name.startswith('__'):
                raise AttributeError(name)
            return type(name, (), {})
        ops.__getattr__ = compiled_op
        sys.modules['mmcv._ext'] = ext
        ext.__spec__ = types.SimpleNamespace(name='mmcv._ext')
        sys.modules['mmcv.ops'] = ops
        mmcv.ops = ops
        import importlib.util
        real_find_spec = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: (
            ext.__spec__ if name == 'mmcv._ext' else real_find_spec(name, *a))
        import mmdynopool
        from mmdynopool.compat import mmcv_world
        import mmcv.ops
        assert mmcv_world() == 'full-mmcv', mmcv_world()
        assert sys.modules['mmcv.ops'] is ops
        assert mmcv.ops.point_sample == 'compiled point_sample'
        # no mmcv warning is hidden either: full mmcv prints none of them
        import warnings
        assert not [f for f in warnings.filters if f[1] is not None
                    and 'MultiScaleDeformableAttention' in f[1].pattern]
        print('OK')
    """)
    assert result.returncode == 0, result.stderr
    log = result.stdout + result.stderr
    assert 'running with full-mmcv 2.1.0 (compiled ops; nothing patched)' \
        in log
    assert 'OK' in result.stdout


def test_no_mmcv_at_all_names_both_ways_to_install():
    """No mmcv (simulated: ``sys.modules['mmcv'] = None`` makes it
    unimportable and ``find_spec`` answer None, as when it is absent)."""
    result = run_python("""
        import sys
        sys.modules['mmcv'] = None
        import mmdynopool
    """)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('ImportError: mmdynopool needs mmcv'), last
    assert 'mim install "mmcv>=2.0.0rc4,<2.2.0"' in last  # full mmcv
    assert 'pip install "mmdynopool[lite]"' in last  # mmcv-lite
    assert 'pip install -e ".[lite]"' in last


@lite_only
def test_lite_hides_known_harmless_warnings_and_says_which_mmcv():
    import mmcv
    # Without mmdynopool, mmcv-lite warns at import (so the test can fail).
    bare = run_python('import mmcv.cnn.bricks.transformer')
    assert 'Fail to import ``MultiScaleDeformableAttention``' in bare.stderr
    result = run_python("""
        import warnings
        warnings.simplefilter('default')
        import mmdynopool
        import mmseg.models
        from mmengine.config import Config
        Config.fromfile('configs/dynopool/'
                        'fcn_dynopool-r50-d8_4xb4-80k_ade20k-512x512.py')
    """)
    assert result.returncode == 0, result.stderr
    log = result.stdout + result.stderr
    assert 'MultiScaleDeformableAttention' not in log
    assert 'pkg_resources is deprecated' not in log
    info = [line for line in log.splitlines() if 'mmdynopool: running' in line]
    assert len(info) == 1, log
    assert info[0].endswith(
        f'mmdynopool: running with mmcv-lite {mmcv.__version__} (no compiled '
        'ops: pure-torch mmcv.ops shim; compiled-only ops raise on use)')
    # and the op the warning was about names the fix when it is used
    import mmcv.ops
    with pytest.raises(ImportError, match='full mmcv'):
        mmcv.ops.MultiScaleDeformableAttention()


@lite_only
def test_world_is_logged_once():
    result = run_python("""
        import mmdynopool
        from mmdynopool.compat import install_mmcv_ops_compat
        install_mmcv_ops_compat()
        install_mmcv_ops_compat()
    """)
    assert result.returncode == 0, result.stderr
    log = result.stdout + result.stderr
    assert log.count('mmdynopool: running with mmcv-lite') == 1
    assert FULL_MMCV not in log
