import os

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


def pytest_configure(config):
    # Deprecation noise from mmengine's use of torch.jit, not ours.
    config.addinivalue_line(
        'filterwarnings', 'ignore:`torch.jit.*:DeprecationWarning')
    config.addinivalue_line(
        'filterwarnings',
        'ignore:Fail to import ``MultiScaleDeformableAttention``:UserWarning')
