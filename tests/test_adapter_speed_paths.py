"""The adapter's fast paths against the reference sampling, in float64: the CPU sparse-product
sampling (:mod:`vitadapter.necks.adapter.sparse_sampling`) equals the point-by-point bilinear
reference and the ``grid_sample`` path, forward and gradients, and 'auto' takes it only where it
applies (eager CPU float32/float64; traced code keeps ``grid_sample``)."""
import pytest
import torch

from vitadapter.necks.adapter.deform_attn import DeformableAttention, deformable_sampling
from vitadapter.necks.adapter.sparse_sampling import sparse_path_applies

from test_deform_attn import SHAPES, random_case, sampling_by_hand, tolerance, value_levels


def edge_case():
    """SHAPES with exact borders, corners and points one cell or more outside."""
    value, locations, weights = random_case(SHAPES)
    locations[0, 0, 0, :, 0] = torch.tensor([0.0, 0.0], dtype=torch.float64)
    locations[0, 0, 0, :, 1] = torch.tensor([1.0, 1.0], dtype=torch.float64)
    locations[0, 1, 1, :, 0] = torch.tensor([-0.5, 1.5], dtype=torch.float64)
    return value, locations, weights


def test_sparse_sampling_matches_the_point_by_point_reference():
    value, locations, weights = edge_case()
    ours = deformable_sampling(value, value_levels(SHAPES), locations, weights, implementation='sparse')
    assert ours.shape == (2, 4, 2 * 3) and ours.dtype == torch.float64
    expected = sampling_by_hand(value, SHAPES, locations, weights)
    # float64 rounding: a few dozen operations per term; 1e-12 is > 1000 eps of the term sum
    torch.testing.assert_close(ours, expected, rtol=0, atol=tolerance(value, weights, 1e-12))


@pytest.mark.parametrize('shapes,b,heads,points', [(SHAPES, 2, 2, 3), ([(16, 16), (8, 8), (4, 4)], 2, 3, 4),
                                                    ([(9, 13)], 3, 4, 4)])
def test_sparse_and_grid_sample_paths_agree_with_gradients(shapes, b, heads, points):
    value, locations, weights = random_case(shapes, b=b, lq=11, heads=heads, d=5, points=points, seed=7)
    levels = value_levels(shapes)
    grad_out = torch.randn(b, 11, heads * 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    results = {}
    for impl in ('sparse', 'pytorch'):
        inputs = [t.clone().requires_grad_() for t in (value, locations, weights)]
        out = deformable_sampling(inputs[0], levels, inputs[1], inputs[2], implementation=impl)
        out.backward(grad_out)
        results[impl] = (out.detach(), *(t.grad for t in inputs))
    bound = tolerance(value, weights, 1e-12)
    torch.testing.assert_close(results['sparse'][0], results['pytorch'][0], rtol=0, atol=bound)
    for name, a, e in zip(('value', 'locations', 'weights'), results['sparse'][1:], results['pytorch'][1:]):
        # each gradient entry is a sum of at most (queries x levels x points x 4 corners x d)
        # products of O(1) float64 numbers: 1e-10 of its scale is far above their rounding
        scale = float(e.abs().max()) * 1e-10 + 1e-300
        torch.testing.assert_close(a, e, rtol=0, atol=scale, msg=name)


def test_sparse_gradients_pass_gradcheck():
    shapes = [(3, 4), (2, 3)]
    value, locations, weights = random_case(shapes, b=2, lq=2, heads=2, d=2, points=2, seed=5)
    levels = value_levels(shapes)
    inputs = tuple(t.clone().requires_grad_() for t in (value, locations, weights))
    assert torch.autograd.gradcheck(
        lambda v, loc, w: deformable_sampling(v, levels, loc, w, implementation='sparse'), inputs)


def test_auto_takes_the_sparse_path_on_cpu_and_grid_sample_when_traced():
    value, locations, weights = random_case(SHAPES, dtype=torch.float32)
    assert sparse_path_applies(value) and not sparse_path_applies(value.bfloat16())
    levels = value_levels(SHAPES)
    auto = deformable_sampling(value, levels, locations, weights)
    assert torch.equal(auto, deformable_sampling(value, levels, locations, weights, implementation='sparse'))
    traced = torch.jit.trace(lambda v, loc, w: deformable_sampling(v, levels, loc, w),
                             (value, locations, weights), check_trace=False)
    assert 'grid_sampler' in str(traced.graph) and 'sparse' not in str(traced.graph)
    with pytest.raises(RuntimeError, match=r"implementation='sparse' needs float32/float64 CPU"):
        deformable_sampling(value.bfloat16(), levels, locations.bfloat16(), weights.bfloat16(),
                            implementation='sparse')


def test_module_with_sparse_sampling_equals_grid_sample_in_float64():
    torch.manual_seed(4)
    attn = DeformableAttention(dim=12, num_heads=3, num_levels=2, num_points=4, ratio=0.5).double()
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.5)
    shapes = [(5, 7), (3, 4)]
    levels = value_levels(shapes, torch.rand(1, 6, 2, 2, dtype=torch.float64))
    query, feat = torch.randn(2, 6, 12, dtype=torch.float64), torch.randn(2, 47, 12, dtype=torch.float64)
    outs = {}
    for impl in ('sparse', 'pytorch'):
        attn.implementation = impl
        attn.zero_grad()
        out = attn(query, feat, levels)
        out.pow(2).sum().backward()
        outs[impl] = (out.detach(), attn.sampling_offsets.weight.grad.clone(), attn.value_proj.weight.grad.clone())
    for a, e in zip(outs['sparse'], outs['pytorch']):
        torch.testing.assert_close(a, e, rtol=0, atol=1e-10 * float(e.abs().max()))
