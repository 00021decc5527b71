"""Install mmdynopool: ``pip install -e ".[tests]"``.

The pins are the versions measured to work together on Python 3.11 (see the
README). ``torch==2.13.0`` is pinned exactly so that no dependency can pull a
different (multi-GB CUDA) torch build.
"""
from setuptools import find_packages, setup


def read_version() -> str:
    namespace: dict = {}
    with open('mmdynopool/version.py', encoding='utf-8') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


RUNTIME = [
    'torch==2.13.0',
    'mmengine==0.10.7',
    'mmcv-lite==2.1.0',
    'mmsegmentation==1.2.2',
    # mmseg imports these without declaring them.
    'ftfy',
    'regex',
    # mmengine imports pkg_resources (removed in setuptools>=81); needed for
    # ``mmseg::`` config inheritance.
    'setuptools==80.9.0',
    'numpy',
    'opencv-python',
    'matplotlib',
    # Real photos (skimage.data) for the SR recipe and the demo, no network.
    'scikit-image',
]

setup(
    name='mmdynopool',
    version=read_version(),
    description='DynOPool (CVPR 2022): learnable stage resolutions for '
    'OpenMMLab dense prediction and super-resolution',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    python_requires='>=3.9',
    install_requires=RUNTIME,
    extras_require={
        'tests': ['pytest', 'tensorboard'],
        # ONNX export (tools/deployment/export_onnx.py): torch's dynamo
        # exporter needs onnxscript; onnxruntime checks the exported model.
        'deploy':
        ['onnx==1.23.2', 'onnxruntime==1.32.0', 'onnxscript==0.7.2'],
    },
    license='Apache-2.0',
)
