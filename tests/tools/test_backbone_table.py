"""The backbone table of configs/dynopool/README.md is what
tools/analysis_tools/backbone_table.py makes (cheap columns of a few rows
recomputed; the two-iteration column on one family)."""
import importlib.util
import os.path as osp

import mmseg.models.backbones as mmseg_backbones
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis_tools', 'backbone_table.py')


@pytest.fixture(scope='module')
def table():
    spec = importlib.util.spec_from_file_location('backbone_table', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def readme_rows(table):
    with open(table.README) as f:
        return table.read_table(f.read())


def test_every_mmseg_backbone_has_a_row(table):
    names = {name for name, _ in table.RECIPES}
    covered = names | set(table.WITHOUT_RECIPE) | set(table.INSIDE)
    assert set(mmseg_backbones.__all__) <= covered
    rows = readme_rows(table)
    assert [f'`{recipe}`' for _, recipe in table.RECIPES] == list(rows)
    converts = [r['Backbone'] for r in rows.values()
                if r['Converts'] == 'yes']
    assert len(converts) >= 12, converts


def test_cheap_columns_are_what_the_script_gives(table, capsys):
    # Two small backbones of different kinds: inverted residuals with
    # TF-style padding, and STDC's blocks whose two paths stride together.
    assert table.main(['--check', '--rows', 'MobileNetV3',
                       'STDCContextPathNet']) == 0, capsys.readouterr().out


def test_two_iterations_column(table):
    recipe = dict(table.RECIPES)['MobileNetV2']
    assert readme_rows(table)[f'`{recipe}`']['2 iters (CPU)'].startswith(
        'ok, loss')
    result = table.train_two_iterations(recipe)
    assert result.startswith('ok, loss'), result
