import importlib.util
import os
import shutil

import pytest
import torch

# Tests never touch the network (no pretrained downloads, no hubs).
os.environ.setdefault('HF_HUB_OFFLINE', '1')
# Without a GPU, the Triton kernels run on CPU tensors in Triton's
# interpreter; it is chosen when the kernels are made (on the first use of
# the triton backend), so it is set before any test runs. With a GPU they
# run compiled, on CUDA tensors.
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')

import mmdynopool  # noqa: E402,F401  (applies the compatibility layers)


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)
    yield


requires_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a CUDA GPU')

# The cpu backend's kernels are built on first use with ninja and a C++
# compiler (the compiler PyTorch's extension loader uses: $CXX, else c++).
requires_cpu_kernels = pytest.mark.skipif(
    importlib.util.find_spec('ninja') is None
    or shutil.which(os.environ.get('CXX', 'c++')) is None,
    reason='the cpu backend builds its C++ kernels with ninja and a C++ '
    'compiler, and this machine lacks one')


def pytest_configure(config):
    # Deprecation noise from mmengine's use of torch.jit, not ours.
    config.addinivalue_line(
        'filterwarnings', 'ignore:`torch.jit.*:DeprecationWarning')
    config.addinivalue_line(
        'filterwarnings',
        'ignore:Fail to import ``MultiScaleDeformableAttention``:UserWarning')
