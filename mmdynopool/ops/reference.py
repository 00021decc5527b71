"""DynOPool written straight from the spec, for tests and benchmarks."""
import torch
import torch.nn.functional as F
from torch import Tensor

from .functional import (alpha_to_sizes, check_aggregation, check_alpha,
                         check_feature_map, straight_through_size)


def dynopool2d_reference(x: Tensor,
                         alpha: Tensor,
                         aggregation: str = 'max',
                         min_size: int = 1) -> Tensor:
    """The naive route, written straight from the spec: build the query grid
    from the straight-through sizes and ``grid_sample`` it (border padding),
    then aggregate each cell's four samples. Autograd does the rest.

    Slow and memory-hungry; used as a test oracle and as the benchmark's
    baseline.
    """
    check_feature_map(x)
    check_aggregation(aggregation)
    alpha_values = check_alpha(alpha)
    n, in_h, in_w = x.shape[0], int(x.shape[2]), int(x.shape[3])
    out_h, out_w, pinned_h, pinned_w = alpha_to_sizes(alpha_values, in_h,
                                                      in_w, min_size)
    hat_h = straight_through_size(alpha[0], in_h, out_h, pinned_h)
    hat_w = straight_through_size(alpha[1], in_w, out_w, pinned_w)

    def axis_queries(hat: Tensor, out_size: int) -> Tensor:
        # Cell centres -1 + (2i+1)/H_hat, +- a quarter cell 1/(2 H_hat).
        k = torch.arange(2 * out_size, device=x.device, dtype=x.dtype)
        return -1 + (2 * k + 1) / (2 * hat.to(x.dtype))

    rows = axis_queries(hat_h, out_h)
    cols = axis_queries(hat_w, out_w)
    grid = torch.stack(torch.meshgrid(cols, rows, indexing='xy'), dim=-1)
    grid = grid.unsqueeze(0).expand(n, -1, -1, -1)
    queries = F.grid_sample(
        x, grid, mode='bilinear', padding_mode='border', align_corners=False)
    if aggregation == 'max':
        return F.max_pool2d(queries, 2)
    return F.avg_pool2d(queries, 2)
