"""tools/analysis_tools/benchmark_dynopool.py runs end to end (no timing
is asserted: speed is measured, never tested)."""
import importlib.util
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark_dynopool.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_dynopool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prints_a_row_per_dtype_and_ratio_with_both_ratios(capsys):
    tool = load_tool()
    tool.main(['--device', 'cpu', '--threads', '1', '--repeat', '1',
               '--warmup', '0', '--cpu-shape', '1', '2', '8', '10',
               '--cpu-dtypes', 'fp32', 'bf16', '--copy-mib', '4',
               '--ratios', '0.5', '0.4,0.7', '2'])
    log = capsys.readouterr().out
    assert tool.CPU_TRITON_SKIPPED in log
    assert 'copy bandwidth' in log and 'floor = (2*|x| + 2*|out|)' in log
    header = next(line for line in log.splitlines() if 'floor ms' in line)
    assert 'max_pool2d ms' in header and 'torch ms' in header
    from mmdynopool.ops import cpu_backend
    # the C++ kernels, the CPU's fused backend, where they build
    timed_cpu = cpu_backend.kernels_available()
    assert ('cpu ms' in header) == timed_cpu
    assert ('cpu backend skipped' in log) != timed_cpu
    assert 'x max_pool2d' in header and 'x floor' in header
    assert 'triton' not in header
    rows = [line.split() for line in log.splitlines()
            if line.startswith('  fp32') or line.startswith('  bf16')]
    # dtype, "(r_h," "r_w)", out, floor, max_pool2d, then torch and cpu:
    # ms, x max_pool2d, x floor
    assert [(row[0], row[1] + row[2], row[3]) for row in rows] == [
        (dtype, ratio, out) for dtype in ('fp32', 'bf16')
        for ratio, out in (('(0.5,0.5)', '4x5'), ('(0.4,0.7)', '3x7'),
                           ('(2,2)', '16x20'))]
    for row in rows:
        assert len(row) == (12 if timed_cpu else 9)
        assert float(row[4]) > 0  # the floor
        for cell in row[5:]:
            median, best = (float(v) for v in cell.split('/'))
            assert median > 0 and best > 0


def test_floor_counts_input_output_and_their_gradients():
    tool = load_tool()
    import torch
    # 2*|x| + 2*|out| values, 4 bytes each, at 1 byte per second.
    assert tool.floor_seconds((1, 2, 8, 8), (0.5, 0.5), torch.float32,
                              1.0) == (2 * 128 + 2 * 32) * 4
    assert tool.floor_seconds((1, 1, 4, 4), (1.0, 2.0), torch.bfloat16,
                              2.0) == (2 * 16 + 2 * 32) * 2 / 2


@pytest.mark.parametrize('text,ratio', [('0.5', (0.5, 0.5)),
                                        ('0.4,0.7', (0.4, 0.7))])
def test_ratio_argument(text, ratio):
    assert load_tool().ratio_arg(text) == ratio


@pytest.mark.parametrize('text', ['0', 'a', '0.4,0.5,0.6', '-1,1'])
def test_bad_ratio_argument_is_rejected(text):
    tool = load_tool()
    with pytest.raises(SystemExit):
        tool.parse_args(['--ratios', text])
