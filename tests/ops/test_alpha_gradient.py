"""alpha's gradient of every backend against a numerical derivative.

The straight-through estimate makes ``alpha``'s gradient the derivative of
the *linearised* layer: the output size fixed at its integer value, the
query positions moving with ``H_hat = H_out + H / alpha - sg(H / alpha)``.
A central difference of that function is the mean of its one-sided
derivatives, which is also the spec's rule on pixel centres, so it checks
every query point, those on the first and last pixel centres included.
"""
import importlib.util

import pytest
import torch
import torch.nn.functional as F

from mmdynopool.ops import dynopool2d
from mmdynopool.ops.functional import alpha_to_sizes, check_alpha

BACKENDS = ['torch'] + (['triton'] if importlib.util.find_spec('triton')
                        else [])
DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'


def linearised(x, alpha, alpha0, size, aggregation):
    """The layer with its output size fixed, positions from ``alpha``."""
    (h, w), (out_h, out_w) = x.shape[2:], size
    hat_h = out_h + h / alpha[0] - h / alpha0[0]
    hat_w = out_w + w / alpha[1] - w / alpha0[1]
    rows = -1 + (2 * torch.arange(2 * out_h, dtype=x.dtype, device=x.device)
                 + 1) / (2 * hat_h)
    cols = -1 + (2 * torch.arange(2 * out_w, dtype=x.dtype, device=x.device)
                 + 1) / (2 * hat_w)
    grid = torch.stack(torch.meshgrid(cols, rows, indexing='xy'), -1)
    queries = F.grid_sample(x, grid.expand(x.shape[0], -1, -1, -1),
                            mode='bilinear', padding_mode='border',
                            align_corners=False)
    pool = F.max_pool2d if aggregation == 'max' else F.avg_pool2d
    return pool(queries, 2)


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('shape,ratio', [
    ((2, 3, 4, 9), (3.54, 2.0)),  # a query on the last pixel centre of H
    ((1, 2, 2, 5), (1.7, 3.7)),   # ... of both axes
    ((2, 2, 6, 7), (1.0, 0.45)),  # identity scale, downsampling
    ((1, 3, 12, 10), (1 / 6, 0.5)),  # kinks inside, r = 0.5 on even W
])
def test_alpha_gradient_is_the_central_difference(backend, shape, ratio):
    x = torch.randn(*shape, dtype=torch.float64, device=DEVICE)
    alpha0 = torch.tensor([1 / ratio[0], 1 / ratio[1]], dtype=torch.float64,
                          device=DEVICE)
    size = alpha_to_sizes(check_alpha(alpha0), *shape[2:], 1)[:2]
    weights = torch.randn(*shape[:2], *size, dtype=torch.float64,
                          device=DEVICE)
    alpha = alpha0.clone().requires_grad_()
    out = dynopool2d(x, alpha, 'avg', backend=backend)
    assert tuple(out.shape[2:]) == size
    (out * weights).sum().backward()
    eps = 1e-6
    for axis in range(2):
        step = torch.zeros(2, dtype=torch.float64, device=DEVICE)
        step[axis] = eps
        plus, minus = ((linearised(x, a, alpha0, size, 'avg') * weights).sum()
                       for a in (alpha0 + step, alpha0 - step))
        numeric = ((plus - minus) / (2 * eps)).item()
        assert alpha.grad[axis].item() == pytest.approx(numeric, rel=1e-6,
                                                        abs=1e-6)
