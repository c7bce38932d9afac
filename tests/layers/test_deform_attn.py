"""Multi-scale deformable attention: our PyTorch sampling against a float64 point-by-point bilinear
reference and (where importable) mmcv's PyTorch path, its gradients, the whole module against a
direct computation, the implementation choice and bf16 autocast on CPU."""
import math

import pytest
import torch

from vitadapter.layers.deform_attn import (DeformableAttention, ValueLevels,
                                                  compiled_kernel_available, deformable_sampling)

EPS64 = torch.finfo(torch.float64).eps  # 2.2e-16
BF16_UNIT = 2.0 ** -8  # bf16 keeps 8 significant bits: relative rounding error <= 2^-8


def sample_by_hand(value_map, x, y):
    """Bilinear read of (d, h, w) at continuous pixel coordinates (x, y), zeros outside."""
    d, h, w = value_map.shape
    x0, y0 = math.floor(x), math.floor(y)
    out = torch.zeros(d, dtype=value_map.dtype)
    for xi, yi in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)):
        if 0 <= xi < w and 0 <= yi < h:
            out += (1 - abs(x - xi)) * (1 - abs(y - yi)) * value_map[:, yi, xi]
    return out


def sampling_by_hand(value, shapes, locations, weights):
    """Deformable sampling point by point: location u of a level of n cells at u * n - 0.5."""
    b, lq, heads, num_levels, points, _ = locations.shape
    d = value.shape[-1]
    out = torch.zeros(b, lq, heads * d, dtype=value.dtype)
    for bi in range(b):
        for q in range(lq):
            for hd in range(heads):
                start = 0
                for lvl, (h, w) in enumerate(shapes):
                    vmap = value[bi, start:start + h * w, hd].T.reshape(d, h, w)
                    start += h * w
                    for p in range(points):
                        u, v = locations[bi, q, hd, lvl, p].tolist()
                        out[bi, q, hd * d:(hd + 1) * d] += (
                            weights[bi, q, hd, lvl, p] * sample_by_hand(vmap, u * w - 0.5, v * h - 0.5))
    return out


def value_levels(shapes, reference_points=None):
    sizes = torch.tensor([h * w for h, w in shapes])
    starts = torch.cumsum(sizes, 0) - sizes
    refs = torch.zeros(1) if reference_points is None else reference_points
    return ValueLevels(torch.tensor(shapes), starts, refs)


def random_case(shapes, b=2, lq=4, heads=2, d=3, points=3, dtype=torch.float64, seed=3):
    """Locations in [-0.2, 1.2]: inside, partly outside (within half a cell) and fully outside."""
    g = torch.Generator().manual_seed(seed)
    value = torch.randn(b, sum(h * w for h, w in shapes), heads, d, generator=g, dtype=dtype)
    locations = torch.rand(b, lq, heads, len(shapes), points, 2, generator=g, dtype=dtype) * 1.4 - 0.2
    weights = torch.rand(b, lq, heads, len(shapes), points, generator=g, dtype=dtype)
    return value, locations, weights


def tolerance(value, weights, relative):
    """Bound of the sum of |weight * value| behind any output: errors are relative to it."""
    return relative * float(weights.abs().sum((-1, -2)).max() * value.abs().max())


SHAPES = [(5, 7), (3, 4), (2, 1), (1, 1)]  # odd sizes, a single column and a single cell


def test_sampling_matches_a_point_by_point_bilinear_reference():
    value, locations, weights = random_case(SHAPES)
    # exact borders and corners, on the edge of a cell and one cell beyond (must read zeros)
    locations[0, 0, 0, :, 0] = torch.tensor([0.0, 0.0], dtype=torch.float64)
    locations[0, 0, 0, :, 1] = torch.tensor([1.0, 1.0], dtype=torch.float64)
    locations[0, 1, 1, :, 0] = torch.tensor([-0.5, 1.5], dtype=torch.float64)
    outside = (locations < -0.2) | (locations > 1.2)
    assert outside.any() and ((locations < 0) | (locations > 1)).sum() > 20
    levels = value_levels(SHAPES)
    ours = deformable_sampling(value, levels, locations, weights, implementation='pytorch')
    assert ours.shape == (2, 4, 2 * 3) and ours.dtype == torch.float64
    expected = sampling_by_hand(value, SHAPES, locations, weights)
    # float64 rounding: a few dozen operations per term, 1e-12 is > 1000 eps of the term sum
    torch.testing.assert_close(ours, expected, rtol=0, atol=tolerance(value, weights, 1e-12))
    auto = deformable_sampling(value, levels, locations, weights)  # on the CPU: the sparse path
    assert torch.equal(auto, deformable_sampling(value, levels, locations, weights, implementation='sparse'))
    torch.testing.assert_close(auto, expected, rtol=0, atol=tolerance(value, weights, 1e-12))


def test_a_point_one_cell_outside_reads_zero_and_a_cell_centre_reads_the_cell():
    value, locations, weights = random_case([(3, 5)], b=1, lq=1, heads=1, d=2, points=2)
    locations[..., 0, :] = torch.tensor([-1 / 5 - 1e-3, 0.5], dtype=torch.float64)  # x < -1 cell
    locations[..., 1, :] = torch.tensor([(2 + 0.5) / 5, (1 + 0.5) / 3], dtype=torch.float64)
    weights[:] = torch.tensor([1.0, 0.0], dtype=torch.float64)
    out = deformable_sampling(value, value_levels([(3, 5)]), locations, weights)
    assert torch.equal(out, torch.zeros_like(out))
    weights[:] = torch.tensor([0.0, 1.0], dtype=torch.float64)
    out = deformable_sampling(value, value_levels([(3, 5)]), locations, weights)
    cell = value[0, 1 * 5 + 2, 0]  # row 1, column 2
    torch.testing.assert_close(out[0, 0], cell, rtol=8 * EPS64, atol=0)


@pytest.mark.stack  # against mmcv's own implementation: the upstream stack
def test_sampling_equals_mmcv_pytorch_path_in_float64():
    mmcv_msda = pytest.importorskip(
        'mmcv.ops.multi_scale_deform_attn',
        reason='mmcv.ops is importable only with mmcv built with its ops (the "upstream" stack)')
    value, locations, weights = random_case(SHAPES, b=3, lq=7, heads=4, d=5, points=4)
    levels = value_levels(SHAPES)
    ours = deformable_sampling(value, levels, locations, weights, implementation='pytorch')
    theirs = mmcv_msda.multi_scale_deformable_attn_pytorch(value, levels.spatial_shapes, locations, weights)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=tolerance(value, weights, 1e-12))


def test_gradients_pass_gradcheck():
    shapes = [(3, 4), (2, 3)]
    value, locations, weights = random_case(shapes, b=1, lq=2, heads=2, d=2, points=2, seed=5)
    levels = value_levels(shapes)
    inputs = tuple(t.clone().requires_grad_() for t in (value, locations, weights))
    assert torch.autograd.gradcheck(
        lambda v, loc, w: deformable_sampling(v, levels, loc, w, implementation='pytorch'), inputs)


def test_compiled_on_cpu_is_a_clear_error():
    value, locations, weights = random_case([(2, 2)], b=1, lq=1, heads=1, d=1, points=1)
    with pytest.raises(RuntimeError, match=r"implementation='compiled' needs CUDA tensors .*use "
                                           r"implementation='auto' or 'pytorch'"):
        deformable_sampling(value, value_levels([(2, 2)]), locations, weights, implementation='compiled')
    with pytest.raises(ValueError, match=r"implementation='cuda' is not one of"):
        deformable_sampling(value, value_levels([(2, 2)]), locations, weights, implementation='cuda')
    with pytest.raises(ValueError, match=r"implementation='cuda' is not one of"):
        DeformableAttention(8, 2, 1, implementation='cuda')
    assert isinstance(compiled_kernel_available(), bool)


def test_mismatched_shapes_are_a_clear_error():
    value, locations, weights = random_case([(2, 2)], b=1, lq=1, heads=2, d=1, points=1)
    with pytest.raises(ValueError, match=r'value \(1, 4, 2, 1\) .* do not agree'):
        deformable_sampling(value, value_levels([(2, 2)]), locations, weights[..., :0])


# ----------------------------------------------------------------------------- the whole module
def test_module_matches_a_direct_computation():
    """The whole module: projections, offsets normalised by each level's size, softmax over levels
    and points, per-level reference points."""
    torch.manual_seed(4)
    attn = DeformableAttention(dim=8, num_heads=2, num_levels=2, num_points=2, ratio=0.5).double()
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.5)
    shapes = [(3, 5), (2, 2)]
    refs = torch.rand(1, 3, 2, 2, dtype=torch.float64)
    levels = value_levels(shapes, refs)
    query, feat = torch.randn(1, 3, 8, dtype=torch.float64), torch.randn(1, 19, 8, dtype=torch.float64)
    with torch.no_grad():
        ours = attn(query, feat, levels)
        expected = direct_deformable_attention(attn, query, feat, shapes, refs)
    assert torch.allclose(ours[0], expected, rtol=0, atol=1e-12 * float(expected.abs().max()))


def direct_deformable_attention(attn, query, feat, shapes, refs):
    """Deformable attention of one image written out point by point."""
    value = feat @ attn.value_proj.weight.T + attn.value_proj.bias  # (1, 19, 4): 2 heads x 2
    offsets = (query @ attn.sampling_offsets.weight.T + attn.sampling_offsets.bias).view(3, 2, 2, 2, 2)
    logits = (query @ attn.attention_weights.weight.T + attn.attention_weights.bias).view(3, 2, 4)
    probs = logits.softmax(-1).view(3, 2, 2, 2)
    out = torch.zeros(3, 4, dtype=torch.float64)
    for q in range(3):
        for hd in range(2):
            start = 0
            for lvl, (h, w) in enumerate(shapes):
                vmap = value[0, start:start + h * w, hd * 2:hd * 2 + 2].T.reshape(2, h, w)
                start += h * w
                for p in range(2):
                    u = refs[0, q, lvl, 0] + offsets[q, hd, lvl, p, 0] / w
                    v = refs[0, q, lvl, 1] + offsets[q, hd, lvl, p, 1] / h
                    out[q, hd * 2:hd * 2 + 2] += probs[q, hd, lvl, p] * sample_by_hand(vmap, float(u * w) - 0.5, float(v * h) - 0.5)
    return out @ attn.output_proj.weight.T + attn.output_proj.bias


def test_module_runs_in_bf16_autocast_on_cpu():
    """bf16 autocast: locations stay float32 (bf16 would misplace a location near 1 by up to 2^-9
    of the level), the output is close to float32's and gradients flow."""
    torch.manual_seed(0)
    shapes = [(16, 16), (8, 8), (4, 4)]
    attn = DeformableAttention(dim=32, num_heads=4, num_levels=3, num_points=4, ratio=0.5)
    levels = value_levels(shapes, torch.rand(1, 20, 3, 2))
    query, feat = torch.randn(2, 20, 32), torch.randn(2, 336, 32)
    reference = attn(query, feat, levels)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        locations, _ = attn.sampling(query, levels)
        out = attn(query, feat, levels)
    assert locations.dtype == torch.float32
    assert out.dtype == torch.bfloat16 and out.shape == reference.shape
    # about 8 bf16 roundings on the way (query, 4 weight casts, value, offsets and the sampled
    # values before output_proj), each <= 2^-8 relative: the rms error stays below 8 * 2^-8
    relative = float((out.float() - reference).norm() / reference.norm())
    assert relative < 8 * BF16_UNIT, relative
    out.float().sum().backward()
    assert attn.value_proj.weight.grad is not None and attn.sampling_offsets.weight.grad.abs().sum() > 0
