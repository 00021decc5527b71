"""tools/analysis_tools/memory_report.py on a tiny segmentor (in-process
worker; the real report runs R50-D8 in subprocesses)."""
import importlib.util
import os.path as osp

from ._models import SEGMENTOR

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'memory_report',
        osp.join(ROOT, 'tools', 'analysis_tools', 'memory_report.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_worker_measures_a_training_step(tmp_path):
    tool = load_tool()
    config = tmp_path / 'tiny.py'
    config.write_text(f'default_scope = "mmseg"\nmodel = {SEGMENTOR!r}\n')
    results = []
    for scale in (1.0, 0.5):
        args = tool.parse_args([
            '--worker', 'dynopool-init', '--dynopool-config',
            str(config), '--shape', '48', '40', '--stem-scale',
            str(scale)
        ])
        results.append(tool.worker(args))
    full, half = results
    assert full['gmacs'] > half['gmacs'] > 0
    assert full['saved_mib'] > half['saved_mib'] > 0
    assert full['peak_mib'] >= full['saved_mib']
    first = next(iter(half['ratios'].values()))
    assert first == (0.25, 0.25)  # the first DynOPool's ratio, halved
    table = tool.format_table(results)
    assert 'saved MiB' in table and 'dynopool-init' in table
