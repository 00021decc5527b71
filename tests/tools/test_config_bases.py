"""The shared bases of the recipes.

* ``configs/dynopool/_base_/dynopool_segmentation.py``: what every DynOPool
  segmentation recipe adds to its mmseg base. A recipe takes its
  ``dynopool_model`` / ``dynopool_optim_wrapper`` parts out of ``_base_``;
  none may stay in a resolved recipe.
* ``configs/dynopool_sr/_base_/{div2k_set5_set14,skimage}.py``: one data set
  base for every SR scale; the ``_x2`` / ``_x4`` files only set the scale
  (and the LR patch size), and every place that uses it must follow.

(When the bases were introduced, every recipe's resolved config was dumped
before and after and compared equal; these tests keep the properties.)
"""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

import mmdynopool  # noqa: F401  (mmseg:: needs mmseg importable)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEG_DIR = osp.join(REPO, 'configs', 'dynopool')
SR_BASE = osp.join(REPO, 'configs', 'dynopool_sr', '_base_')
SEG_RECIPES = sorted(
    osp.basename(p) for p in glob.glob(osp.join(SEG_DIR, '*.py')))
SHARED_SEG = osp.join(SEG_DIR, '_base_', 'dynopool_segmentation.py')


def uses_shared_base(path: str) -> bool:
    with open(path) as f:
        return './_base_/dynopool_segmentation.py' in f.read()


@pytest.mark.parametrize('recipe', [
    r for r in SEG_RECIPES if uses_shared_base(osp.join(SEG_DIR, r))
])
def test_segmentation_recipe_gets_the_shared_parts(recipe):
    cfg = Config.fromfile(osp.join(SEG_DIR, recipe)).to_dict()
    shared = Config.fromfile(SHARED_SEG).to_dict()
    # taken out of _base_ by the recipe, not left in the resolved config
    assert 'dynopool_model' not in cfg and 'dynopool_optim_wrapper' not in cfg
    assert cfg['custom_imports'] == shared['custom_imports']
    assert cfg['custom_hooks'] == shared['custom_hooks']
    assert cfg['model']['type'] == 'DynOPoolEncoderDecoder'
    assert cfg['model']['budget_loss'] == \
        shared['dynopool_model']['budget_loss']
    assert cfg['model']['backbone']['type'].startswith('DynOPool')
    # merged into the mmseg recipe's optimiser settings, not replacing them
    optim = cfg['optim_wrapper']
    assert optim['constructor'] == 'DynOPoolOptimWrapperConstructor'
    assert 'optimizer' in optim and 'alpha_lr_mult' in optim['paramwise_cfg']
    # mmengine adds `_scope_` only to what came from the mmseg base
    assert '_scope_' not in optim['paramwise_cfg']


def test_shared_base_alone_is_a_valid_config():
    cfg = Config.fromfile(SHARED_SEG)
    assert cfg.dynopool_optim_wrapper.paramwise_cfg.alpha_lr_mult == 1.0


def test_a_recipe_that_forgets_the_pop_keeps_the_part_visibly(tmp_path):
    """Why the recipes pop: a key of a base stays in the resolved config."""
    (tmp_path / 'child.py').write_text(
        f"_base_ = ['mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py', "
        f"{SHARED_SEG!r}]\n")
    cfg = Config.fromfile(str(tmp_path / 'child.py'))
    assert 'dynopool_model' in cfg and cfg.model.type == 'EncoderDecoder'


def scale_values(cfg, key: str) -> list:
    """Every value of ``key`` anywhere in a config."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == key:
                    found.append(v)
                walk(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v)

    walk(cfg)
    return found


def replace_values(node, key: str, value):
    """A copy of ``node`` with every ``key`` set to ``value``."""
    if isinstance(node, dict):
        return {k: value if k == key else replace_values(v, key, value)
                for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(replace_values(v, key, value) for v in node)
    return node


@pytest.mark.parametrize('data_set, uses', [
    ('div2k_set5_set14', {'scale': 7}),  # 3 datasets
    ('skimage', {'scale': 5, 'lr_patch_size': 9}),
])
def test_sr_scale_bases_differ_only_in_their_scale(data_set, uses):
    x2 = Config.fromfile(osp.join(SR_BASE, f'{data_set}_x2.py')).to_dict()
    x4 = Config.fromfile(osp.join(SR_BASE, f'{data_set}_x4.py')).to_dict()
    assert set(scale_values(x2, 'scale')) == {2}
    assert set(scale_values(x4, 'scale')) == {4}
    assert len(scale_values(x4, 'scale')) == len(scale_values(x2, 'scale'))
    if 'lr_patch_size' in uses:
        assert set(scale_values(x2, 'lr_patch_size')) == {32}
        assert set(scale_values(x4, 'lr_patch_size')) == {24}
    # everything else is the one shared base
    for key, value in uses.items():
        x2, x4 = (replace_values(c, key, value) for c in (x2, x4))
    assert x2 == x4


def test_sr_recipe_at_x4_reads_x4_everywhere():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'dynopool_sr',
                 'edsr-dynopool_x4c64b16_1xb16-300k_div2k.py'))
    assert cfg.model.generator.scale == 4
    datasets = [cfg.train_dataloader.dataset,
                *cfg.val_dataloader.dataset.datasets,
                *cfg.test_dataloader.dataset.datasets]
    assert [d.scale for d in datasets] == [4] * 5


STUDY_CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'demo', 'study', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'dynopool_sr', 'study', '*.py')))


@pytest.mark.parametrize('config', STUDY_CONFIGS, ids=osp.basename)
def test_study_config_resolves_to_registered_hooks(config):
    """Every study config (demo and SR) reads, and each of its custom hooks
    is one the registry knows (a typo would only fail its training)."""
    from mmengine.registry import HOOKS
    cfg = Config.fromfile(config)
    hooks = cfg.get('custom_hooks') or []
    assert hooks, f'{config} has no custom_hooks'
    for hook in hooks:
        assert HOOKS.get(hook['type']) is not None, hook['type']
