"""compare_sr.py: the SR models against pixel shuffle over seeds - the
statistics on synthetic runs, the model specs, and a real (tiny) run of the
offline recipes and a study config through tools/train.py."""
import json
import os
import os.path as osp

import pytest

from .test_demo_tools import load_tool


def write_sr_run(work_dir, psnr, ssim=0.9, gmacs=1.0, ratios=None):
    """A finished SR run: the ratio record and a validation line."""
    os.makedirs(osp.join(work_dir, '20260101_000000', 'vis_data'))
    layers = {
        name: {'r_h': r_h, 'r_w': r_w, 'h': 64, 'w': 64}
        for name, (r_h, r_w) in (ratios or {}).items()
    }
    with open(osp.join(work_dir, 'dynopool_ratios.json'), 'w') as f:
        json.dump([{'iter': 600, 'gmacs': gmacs, 'layers': layers}], f)
    with open(osp.join(work_dir, '20260101_000000', 'vis_data',
                       'scalars.json'), 'w') as f:
        f.write(json.dumps({'loss': 0.1, 'step': 600}) + '\n')
        f.write(json.dumps({'skimage/PSNR': psnr, 'skimage/SSIM': ssim,
                            'step': 600}) + '\n')


def test_compare_sr_per_seed_deltas_and_ratios(tmp_path, capsys):
    sr = load_tool('compare_sr')
    for seed, (base, dyn) in enumerate([(32.3, 32.0), (32.1, 32.2)]):
        write_sr_run(str(tmp_path / 'pixel-shuffle' / 'x2' / f'seed{seed}'),
                     base, gmacs=2.0)
        write_sr_run(str(tmp_path / 'dynopool' / 'x2' / f'seed{seed}'), dyn,
                     gmacs=1.9 + 0.1 * seed,
                     ratios={'generator.upsample.pools.0':
                             (2.0 + 0.1 * seed, 2.0 - 0.1 * seed)})
    result = sr.main(['--scales', '2', '--seeds', '0', '1', '--no-train',
                      '--work-dir', str(tmp_path)])
    entry = result['dynopool'][2]
    assert entry['per_seed_delta'] == pytest.approx([-0.3, 0.1])
    assert entry['delta'][0] == pytest.approx(-0.1)
    assert entry['seeds_ahead'] == 1
    assert entry['gmacs_rel'][0] == pytest.approx((0.95 + 1.0) / 2)
    assert entry['max_gmacs_rel'] == pytest.approx(1.0)
    (r_h, _), (r_w, _) = entry['ratios']['generator.upsample.pools.0']
    assert (r_h, r_w) == pytest.approx((2.05, 1.95))
    text = capsys.readouterr().out
    assert '-0.10+-0.28' in text and '1/2' in text and '-0.30 +0.10' in text
    with pytest.raises(FileNotFoundError, match='no finished run'):
        sr.main(['--scales', '4', '--seeds', '0', '--no-train',
                 '--work-dir', str(tmp_path)])


def test_compare_sr_model_specs():
    sr = load_tool('compare_sr')
    assert sr.parse_model('dynopool')[1].endswith(
        'edsr-dynopool_x{scale}c32b4_1xb8-600iter_skimage.py')
    assert sr.parse_model('a=configs/x{scale}.py') == ('a',
                                                       'configs/x{scale}.py')
    with pytest.raises(ValueError, match='not one of'):
        sr.parse_model('edsr')
    with pytest.raises(ValueError, match='with {scale}'):
        sr.parse_model('a=configs/x2.py')


def test_compare_sr_trains_the_offline_recipes_and_a_study_config(
        tmp_path, monkeypatch):
    """Three tiny trainings (pixel shuffle, the DynOPool tail, the study's
    recipe) through tools/train.py, then the table."""
    sr = load_tool('compare_sr')
    study = ('recipe=configs/dynopool_sr/study/'
             'edsr-dynopool-recipe_x{scale}c32b4_1xb8-600iter_skimage.py')
    tiny = ['train_cfg.max_iters=3', 'train_cfg.val_interval=3',
            'model.generator.mid_channels=8', 'model.generator.num_blocks=1',
            'train_dataloader.batch_size=2',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'custom_hooks.0.interval=1']
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    result = sr.main(['--scales', '2', '--seeds', '0', '--models',
                      'dynopool', study, '--work-dir', str(tmp_path),
                      '--cfg-options', *tiny])
    assert set(result) == {'pixel-shuffle', 'dynopool', 'recipe'}
    for name in result:
        entry = result[name][2]
        assert 10 < entry['PSNR'][0] < 50 and 0 < entry['SSIM'][0] <= 1
    assert result['pixel-shuffle'][2]['ratios'] == {}
    # the DynOPool tail starts at the pixel-shuffle tail's GMACs (r = 2)
    assert result['dynopool'][2]['gmacs_rel'][0] == pytest.approx(1.0,
                                                                   abs=0.02)
    # the recipe holds alpha for 100 iterations: still r = 2 after 3
    (r_h, _), (r_w, _) = result['recipe'][2]['ratios'][
        'generator.upsample.pools.0']
    assert (r_h, r_w) == pytest.approx((2.0, 2.0))
