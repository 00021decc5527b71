"""What ``pip install`` of the project asks for, in two environments.

* A user's OpenMMLab environment: a venv that holds ``torch==2.5.0`` (think
  of a CUDA build) and full ``mmcv==2.1.0``. ``pip install -e REPO`` (the
  README's "Into an existing OpenMMLab environment" command) must keep both:
  pip's dry-run report may install mmengine, mmsegmentation and small
  packages, but neither torch, nor mmcv, nor mmcv-lite.
* A bare venv with the README's own install command (constraints file,
  ``lite`` extra): it must ask for exactly the tested stack, torch 2.13.0 and
  mmcv-lite 2.1.0.

The user's torch and mmcv are stand-in distributions (metadata only: a
``.dist-info`` with METADATA, INSTALLER and RECORD, which is all pip reads
to decide what is installed). pip resolves the rest from the package index
configured for this machine (``--dry-run`` reads metadata, installs nothing).
"""
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
USER_STACK = {'torch': '2.5.0', 'mmcv': '2.1.0'}


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r'[-_.]+', '-', name).lower()


def make_venv(path: str) -> str:
    """A fresh venv (its own pip, no site packages); returns its python."""
    subprocess.run([sys.executable, '-m', 'venv', path], check=True,
                   timeout=300)
    return osp.join(path, 'bin', 'python')


def purelib(python: str) -> str:
    return subprocess.run(
        [python, '-c', 'import sysconfig; '
         "print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip()


def add_stand_in_distribution(site_packages: str, name: str,
                              version: str) -> None:
    """Metadata of an installed distribution, as pip writes it."""
    dist_info = osp.join(site_packages, f'{name}-{version}.dist-info')
    os.makedirs(dist_info)
    with open(osp.join(dist_info, 'METADATA'), 'w') as f:
        f.write(f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n'
                'Summary: stand-in for the user\'s own build\n')
    with open(osp.join(dist_info, 'INSTALLER'), 'w') as f:
        f.write('pip\n')
    with open(osp.join(dist_info, 'RECORD'), 'w') as f:
        for entry in ('METADATA', 'INSTALLER', 'RECORD'):
            f.write(f'{name}-{version}.dist-info/{entry},,\n')


def installed(python: str) -> dict:
    """``{canonical name: version}`` of what the venv holds."""
    out = subprocess.run(
        [python, '-m', 'pip', 'list', '--format', 'json'], check=True,
        capture_output=True, text=True).stdout
    return {canonical(d['name']): d['version'] for d in json.loads(out)}


def dry_run(python: str, pip_args: list, report: str) -> dict:
    """``pip install --dry-run --report`` from the repo root: the report's
    install list as ``{canonical name: version}``."""
    proc = subprocess.run(
        [python, '-m', 'pip', 'install', '--dry-run', '--quiet', '--report',
         report, *pip_args], cwd=REPO, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(report) as f:
        items = json.load(f)['install']
    return {canonical(i['metadata']['name']): i['metadata']['version']
            for i in items}


def readme_install_args() -> list:
    """The pip arguments of the README's one install command."""
    with open(osp.join(REPO, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    section = readme.split('## 1. Install', 1)[1].split('\n## ', 1)[0]
    lines = [line for line in section.splitlines()
             if line.startswith('python3 -m venv .venv')]
    assert len(lines) == 1, lines
    return shlex.split(lines[0].split('pip install', 1)[1])


def test_ci_runs_the_readme_install_command():
    with open(osp.join(REPO, '.ci', 'run'), encoding='utf-8') as f:
        lines = [line for line in f if 'pip install' in line]
    assert len(lines) == 1, lines
    ci_args = shlex.split(lines[0].split('pip install', 1)[1])
    assert [a for a in ci_args if a != '-q'] == readme_install_args()


def test_user_environment_keeps_its_torch_and_mmcv(tmp_path):
    python = make_venv(str(tmp_path / 'user-venv'))
    for name, version in USER_STACK.items():
        add_stand_in_distribution(purelib(python), name, version)
    before = installed(python)
    assert before['torch'] == '2.5.0' and before['mmcv'] == '2.1.0'

    plan = dry_run(python, ['-e', REPO], str(tmp_path / 'report.json'))
    print('user environment, dry-run install:', sorted(plan.items()))
    for name in ('torch', 'mmcv', 'mmcv-lite', 'mmcv-full'):
        assert name not in plan, (name, plan)
    # what the project does need comes in
    assert 'mmdynopool' in plan
    assert 'mmengine' in plan and 'mmsegmentation' in plan
    assert installed(python) == before  # a dry run


def test_bare_environment_gets_the_tested_stack(tmp_path):
    python = make_venv(str(tmp_path / 'bare-venv'))
    args = readme_install_args()
    assert args[:2] == ['-c', 'constraints.txt']
    assert args[-2:] == ['-e', '.[lite,tests,deploy]']
    plan = dry_run(python, args, str(tmp_path / 'report.json'))
    print('bare environment, dry-run install:', sorted(plan.items()))
    # 2.13.0, or the local CPU build 2.13.0+cpu where one lies on disk
    assert plan['torch'].split('+')[0] == '2.13.0', plan['torch']
    assert plan['mmcv-lite'] == '2.1.0'
    assert 'mmcv' not in plan and 'mmcv-full' not in plan
    assert plan['mmengine'] == '0.10.7'
    assert plan['mmsegmentation'] == '1.2.2'
    assert plan['setuptools'] == '80.9.0'
    assert plan['triton'] == '3.9.0'


def test_setup_py_pins_no_torch_and_names_no_mmcv(tmp_path):
    """The metadata pip reads: ranges only, mmcv-lite only in ``lite``."""
    proc = subprocess.run(
        [sys.executable, 'setup.py', '-q', 'egg_info', '--egg-base',
         str(tmp_path)], cwd=REPO, capture_output=True, text=True,
        timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    requires = (tmp_path / 'mmdynopool.egg-info' / 'requires.txt').read_text()
    # requires.txt: core lines, then one ``[extra]`` or ``[extra:marker]``
    # section per extra
    sections, name = {'': []}, ''
    for line in requires.splitlines():
        if line.startswith('['):
            name = line.strip('[]').split(':')[0]
            sections.setdefault(name, [])
        elif line.strip():
            sections[name].append(line.strip())
    core = sections['']
    assert 'torch>=2.5' in core
    assert not [r for r in core if r.startswith(('torch=', 'mmcv'))], core
    assert sections['lite'] == ['mmcv-lite<2.2.0,>=2.0.0rc4']
    assert 'triton' in sections['tests']  # unpinned; constraints pin it
