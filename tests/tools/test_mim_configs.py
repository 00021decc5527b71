"""``_base_ = 'mmdynopool::...'`` from a user's own folder, after an editable
install and after a wheel install (OpenMMLab's ``.mim`` layout).

Each install goes into a temporary venv that sees this venv's packages (a
``.pth`` line with its site-packages, so torch, mmengine and mmseg are not
installed again), from a copy of the checkout that has no
``mmdynopool/.mim`` yet: the install itself must make it, symlinks for
``pip install -e``, copies in the wheel. The user's config then lives in a
temporary folder outside both.
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FCN = 'dynopool/fcn_dynopool-r50-d8_4xb4-80k_ade20k-512x512.py'
DEMO = 'demo/dynopool_toynet_stretched.py'

# Run in the temporary venv from the user's folder: resolve the user's
# config and report where mmengine found the mmdynopool:: base.
RESOLVE = textwrap.dedent("""
    import json, sys
    import mmdynopool
    from mmengine.config import Config
    cfg = Config.fromfile(sys.argv[1])
    files = [line for line in cfg.text.splitlines()
             if line.startswith('/') and line.endswith('.py')]
    print('RESULT ' + json.dumps(dict(
        package=mmdynopool.__file__, files=files, model_type=cfg.model.type,
        budget_loss=cfg.model.budget_loss.to_dict(),
        hooks=[h.to_dict() for h in cfg.custom_hooks])))
""")


def copy_checkout(dst: str) -> str:
    """The files an install reads (no venv, no git, no ``.mim``)."""
    ignore = shutil.ignore_patterns('.venv', '.git', '.mim', '__pycache__',
                                    '*.egg-info', 'work_dirs', 'build',
                                    'data', '.pytest_cache', '.ruff_cache',
                                    '.dist_test')
    shutil.copytree(REPO, dst, ignore=ignore, symlinks=True)
    assert not osp.lexists(osp.join(dst, 'mmdynopool', '.mim'))
    return dst


def make_venv_over_this_one(path: str) -> str:
    """A venv without pip that also imports this venv's packages."""
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', path],
                   check=True, timeout=120)
    python = osp.join(path, 'bin', 'python')
    site = subprocess.run(
        [python, '-c', 'import sysconfig; '
         "print(sysconfig.get_paths()['purelib'])"], check=True,
        capture_output=True, text=True).stdout.strip()
    # A plain path line: this venv's own .pth files (its editable
    # mmdynopool finder) are not run, so only the new install is found.
    with open(osp.join(site, 'this-venv.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    return python


def pip(python: str, *args: str, cwd: str) -> None:
    """This venv's pip, installing into ``python``'s venv."""
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', '--python', python, *args], cwd=cwd,
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def run_in(python: str, args: list, cwd: str, timeout: int = 240) -> str:
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    env['OMP_NUM_THREADS'] = '1'
    proc = subprocess.run([python, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def resolve_user_config(python: str, user_dir: str) -> dict:
    with open(osp.join(user_dir, 'fcn_b8.py'), 'w') as f:
        f.write(f"_base_ = 'mmdynopool::{FCN}'\n"
                'model = dict(budget_loss=dict(target_ratio=0.8))\n')
    with open(osp.join(user_dir, 'resolve.py'), 'w') as f:
        f.write(RESOLVE)
    out = run_in(python, ['resolve.py', 'fcn_b8.py'], cwd=user_dir)
    result = json.loads(out.split('RESULT ', 1)[1].splitlines()[0])
    # the user's change and the recipe's content, in the user's folder
    assert result['model_type'] == 'DynOPoolEncoderDecoder'
    assert result['budget_loss'] == dict(type='GMACsLoss', loss_weight=1.0,
                                         target_ratio=0.8)
    # hooks of an mmdynopool:: base get the mmdynopool scope
    assert {h['_scope_'] for h in result['hooks']} == {'mmdynopool'}
    return result


def the_base(result: dict, package_dir: str) -> str:
    """The recipe file mmengine read, which must be under ``.mim``."""
    expected = osp.join(package_dir, '.mim', 'configs', FCN)
    assert expected in result['files'], result['files']
    return expected


def test_editable_install_links_mim_to_the_checkout(tmp_path):
    checkout = copy_checkout(str(tmp_path / 'checkout'))
    python = make_venv_over_this_one(str(tmp_path / 'venv'))
    pip(python, 'install', '--no-deps', '--no-build-isolation', '-q', '-e',
        checkout, cwd=str(tmp_path))
    mim = osp.join(checkout, 'mmdynopool', '.mim')
    for name in ('configs', 'tools', 'model-index.yml'):
        assert osp.islink(osp.join(mim, name)), name
        assert osp.realpath(osp.join(mim, name)) == osp.join(checkout, name)

    user_dir = tmp_path / 'my_configs'
    user_dir.mkdir()
    result = resolve_user_config(python, str(user_dir))
    package_dir = osp.join(checkout, 'mmdynopool')
    assert result['package'] == osp.join(package_dir, '__init__.py')
    base = the_base(result, package_dir)
    # a link: an edit of the checkout's configs/ is what the user gets
    assert osp.realpath(base) == osp.join(checkout, 'configs', FCN)


def test_wheel_install_copies_mim_and_its_tools_train(tmp_path):
    checkout = copy_checkout(str(tmp_path / 'checkout'))
    pip(sys.executable, 'wheel', '--no-deps', '--no-build-isolation', '-q',
        '-w', str(tmp_path / 'dist'), checkout, cwd=str(tmp_path))
    wheels = os.listdir(tmp_path / 'dist')
    assert len(wheels) == 1 and wheels[0].endswith('.whl'), wheels
    # the build must not leave links (or copies) in the checkout
    assert not osp.lexists(osp.join(checkout, 'mmdynopool', '.mim'))
    shutil.rmtree(checkout)  # nothing may be read from it any more

    python = make_venv_over_this_one(str(tmp_path / 'venv'))
    pip(python, 'install', '--no-deps', '--no-build-isolation', '-q',
        str(tmp_path / 'dist' / wheels[0]), cwd=str(tmp_path))
    user_dir = tmp_path / 'my_configs'
    user_dir.mkdir()
    result = resolve_user_config(python, str(user_dir))
    package_dir = osp.dirname(result['package'])
    assert package_dir.startswith(str(tmp_path / 'venv')), package_dir
    base = the_base(result, package_dir)
    assert not osp.islink(base) and osp.isfile(base)
    with open(base) as f, open(osp.join(REPO, 'configs', FCN)) as g:
        assert f.read() == g.read()
    mim = osp.join(package_dir, '.mim')
    assert osp.isfile(osp.join(mim, 'model-index.yml'))
    assert not [f for f in os.listdir(osp.join(mim, 'configs', 'dynopool'))
                if f.endswith('.pyc')]

    # The copied tools train the user's child of a copied demo recipe:
    # mmdynopool:: base, mmdynopool scope, two iterations.
    (user_dir / 'demo.py').write_text(
        f"_base_ = 'mmdynopool::{DEMO}'\n"
        'train_cfg = dict(max_iters=2, val_interval=2)\n'
        'train_dataloader = dict(batch_size=2)\n'
        'val_dataloader = dict(dataset=dict(num_samples=2))\n'
        'default_hooks = dict(logger=dict(interval=1))\n')
    log = run_in(python, [
        osp.join(mim, 'tools', 'train.py'), 'demo.py', '--work-dir',
        str(tmp_path / 'work'), '--cfg-options', 'custom_hooks.0.interval=1'
    ], cwd=str(user_dir))
    assert 'Iter(train) [2/2]' in log and 'mIoU' in log
    assert 'Failed to search registry with scope' not in log
    assert (tmp_path / 'work' / 'iter_2.pth').exists()


@pytest.mark.parametrize('path', ['mmdynopool::no_such_dir/recipe.py'])
def test_missing_mmdynopool_config_names_the_path(tmp_path, path):
    import mmdynopool  # noqa: F401  (registers the mmdynopool:: package)
    from mmengine.config import Config
    (tmp_path / 'child.py').write_text(f'_base_ = {path!r}\n')
    with pytest.raises(FileNotFoundError, match='no_such_dir/recipe.py'):
        Config.fromfile(str(tmp_path / 'child.py'))
