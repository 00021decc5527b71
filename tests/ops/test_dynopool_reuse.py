"""A DynOPool layer used more than once per step (shared weights)."""
import torch

from mmdynopool import DynOPool


def test_layer_applied_twice_in_one_graph():
    layer = DynOPool((0.6, 0.4))
    a = torch.randn(1, 2, 16, 16)
    b = torch.randn(1, 2, 12, 20)
    (layer(a).sum() + layer(b).sum()).backward()
    first = layer.alpha.grad.clone()
    layer.alpha.grad = None
    layer(a).sum().backward()
    alone_a = layer.alpha.grad.clone()
    layer.alpha.grad = None
    layer(b).sum().backward()
    torch.testing.assert_close(first, alone_a + layer.alpha.grad)


def test_out_of_range_alpha_is_projected_between_applications():
    layer = DynOPool(0.5, ratio_range=(0.25, 1.0))
    out = layer(torch.randn(1, 1, 8, 8))
    with torch.no_grad():
        layer.alpha.fill_(0.5)  # r = 2, outside the range
    assert layer(torch.randn(1, 1, 8, 8)).shape[2:] == (8, 8)
    assert out.shape[2:] == (4, 4)
