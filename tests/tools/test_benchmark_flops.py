"""tools/benchmarking/flops.py on sparse x dense products: ViTAdapter's CPU sampling is counted
as the work it does (2 x entries x width per product), not as a dense matrix of mostly zeros."""
import os
import sys

import torch

from vitadapter.layers.sparse_sampling import sparse_sampling

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, 'tools'))
from benchmarking.flops import count_flops  # noqa: E402


def test_sparse_sampling_is_counted_by_its_entries_forward_and_backward():
    b, lq, heads, levels, points, d = 2, 50, 3, 2, 4, 8
    shapes = [(10, 12), (5, 6)]
    lv = sum(h * w for h, w in shapes)
    g = torch.Generator().manual_seed(0)
    value = torch.randn(b, lv, heads, d, generator=g, requires_grad=True)
    locations = torch.rand(b, lq, heads, levels, points, 2, generator=g, requires_grad=True)
    weights = torch.rand(b, lq, heads, levels, points, generator=g, requires_grad=True)
    entries = b * lq * heads * levels * points * 4  # 4 bilinear corners per point
    per_product = 2 * entries * d  # one multiply-add per entry and value channel
    assert count_flops(lambda: sparse_sampling(value, shapes, locations, weights)) == per_product
    # backward: dL/dA at the entries (sampled_addmm) and dL/dV = A^T dL/dout, one product each;
    # the coefficients' own elementwise arithmetic is not counted (as for any elementwise op)
    train = count_flops(lambda: sparse_sampling(value, shapes, locations, weights).sum().backward())
    assert train == 3 * per_product
    dense_count = 2 * (b * lq * heads) * (b * lv * heads) * d  # what torch's counter said before
    assert train < dense_count


def test_dense_matrix_products_keep_torch_formula():
    a, m = torch.randn(30, 40), torch.randn(40, 50)
    assert count_flops(lambda: a @ m) == 2 * 30 * 40 * 50
    bias = torch.randn(50)
    assert count_flops(lambda: torch.addmm(bias, a, m)) == 2 * 30 * 40 * 50
