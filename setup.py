"""Install mmdynopool.

Into an existing OpenMMLab environment (your torch and mmcv are kept)::

    pip install -e /path/to/mmdynopool    # or a wheel built from it

On a fresh machine, the tested stack (CPU torch, mmcv-lite)::

    pip install -c constraints.txt -e ".[lite,tests,deploy]"

``install_requires`` names only the ranges the code needs: no exact pins, and
neither mmcv nor mmcv-lite, because both install into the same ``mmcv/``
folder and a user's full (compiled) mmcv must not be overwritten. The exact
versions measured to work together (torch 2.13.0, mmengine 0.10.7, mmseg
1.2.2, mmcv-lite 2.1.0, ...) live in ``constraints.txt``.

Configs and tools are shipped inside the package as ``mmdynopool/.mim/`` (the
OpenMMLab layout that ``mmdynopool::`` config inheritance and ``mim`` read):
symlinks to the top-level ``configs/`` and ``tools/`` in an editable install,
copies in a wheel.
"""
import os
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

try:  # legacy ``setup.py develop``; newer setuptools may drop it
    from setuptools.command.develop import develop
except ImportError:  # pragma: no cover
    develop = None

HERE = osp.dirname(osp.abspath(__file__))
# What ``mmdynopool/.mim/`` holds: folders and files of the checkout.
# mmengine reads ``model-index.yml`` before it looks in ``configs/``.
MIM_FOLDERS = ('configs', 'tools')
MIM_FILES = ('model-index.yml', )


def read_version() -> str:
    namespace: dict = {}
    with open(osp.join(HERE, 'mmdynopool', 'version.py'),
              encoding='utf-8') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def link_mim_folders() -> None:
    """Editable install: ``mmdynopool/.mim/<folder>`` -> ``../../<folder>``.

    Relative links, so the checkout can move; a copy left there by an older
    build is replaced, otherwise edits of ``configs/`` would not be seen.
    """
    mim = osp.join(HERE, 'mmdynopool', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in MIM_FOLDERS + MIM_FILES:
        link = osp.join(mim, name)
        target = osp.join('..', '..', name)
        if osp.islink(link):
            if os.readlink(link) == target:
                continue
            os.remove(link)
        elif osp.isdir(link):
            shutil.rmtree(link)
        elif osp.exists(link):
            os.remove(link)
        os.symlink(target, link)


def copy_mim_folders(package_dir: str) -> None:
    """Wheel build: real copies in ``<build_lib>/mmdynopool/.mim/``."""
    mim = osp.join(package_dir, '.mim')
    for name in MIM_FOLDERS:
        dst = osp.join(mim, name)
        if osp.lexists(dst):
            if osp.islink(dst) or not osp.isdir(dst):
                os.remove(dst)
            else:
                shutil.rmtree(dst)
        shutil.copytree(
            osp.join(HERE, name),
            dst,
            ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    for name in MIM_FILES:
        dst = osp.join(mim, name)
        if osp.lexists(dst):
            os.remove(dst)
        shutil.copyfile(osp.join(HERE, name), dst)


class BuildPyWithMim(build_py):
    """``build_py`` that also fills ``mmdynopool/.mim`` (links if editable)."""

    def run(self) -> None:
        super().run()
        # setuptools >= 64 builds PEP 660 editable installs with
        # ``editable_mode``: the package is then the checkout itself.
        if getattr(self, 'editable_mode', False):
            link_mim_folders()
        else:
            copy_mim_folders(osp.join(self.build_lib, 'mmdynopool'))


CMDCLASS = {'build_py': BuildPyWithMim}
if develop is not None:

    class DevelopWithMim(develop):
        """Legacy ``setup.py develop``: symlinks, as for PEP 660 installs."""

        def run(self) -> None:
            link_mim_folders()
            super().run()

    CMDCLASS['develop'] = DevelopWithMim


# Ranges the code needs. The user's torch (CUDA build or not) and mmcv (full
# or lite) are kept: no torch pin, and mmcv comes from the user or the
# ``lite`` extra.
RUNTIME = [
    # torch.compiler.is_exporting (SR export path) appeared in torch 2.5.
    'torch>=2.5',
    'mmengine>=0.10.0,<1.0.0',
    'mmsegmentation>=1.2.0,<2.0.0',
    # mmseg imports these without declaring them.
    'ftfy',
    'regex',
    # mmengine imports pkg_resources (removed in setuptools>=81); needed for
    # ``mmseg::`` / ``mmdynopool::`` config inheritance.
    'setuptools<81',
    'numpy',
    'opencv-python',
    'matplotlib',
    # Real photos (skimage.data) for the SR recipe and the demo, no network.
    'scikit-image',
    # PyTorch's JIT extension loader builds the CPU kernels with it
    # (mmdynopool/ops/csrc; the torch backend runs where they cannot build).
    'ninja',
]

EXTRAS = {
    # Machines without full mmcv: mmcv-lite (no compiled ops; mmdynopool
    # supplies the few pure-torch ops mmseg imports). mmseg 1.2 accepts
    # mmcv >=2.0.0rc4, <2.2.0. Never together with full mmcv: both own the
    # ``mmcv/`` folder.
    'lite': ['mmcv-lite>=2.0.0rc4,<2.2.0'],
    # triton: the fused-kernel tests (Linux wheels only).
    'tests': ['pytest', 'tensorboard', 'triton; platform_system == "Linux"'],
    # ONNX export (tools/deployment/export_onnx.py): torch's dynamo
    # exporter needs onnxscript; onnxruntime checks the exported model.
    'deploy': ['onnx', 'onnxruntime', 'onnxscript'],
}

setup(
    name='mmdynopool',
    version=read_version(),
    description='DynOPool (CVPR 2022): learnable stage resolutions for '
    'OpenMMLab dense prediction and super-resolution',
    long_description=open(
        osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    # The CPU kernels' source, built on first use (see ops/cpu_backend.py).
    package_data={'mmdynopool.ops': ['csrc/*.cpp']},
    python_requires='>=3.9',
    install_requires=RUNTIME,
    extras_require=EXTRAS,
    cmdclass=CMDCLASS,
    zip_safe=False,
    license='Apache-2.0',
)
