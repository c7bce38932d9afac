"""The adapter's fast paths against the reference sampling, in float64: the CPU sparse-product
sampling (:mod:`vitadapter.necks.adapter.sparse_sampling`) equals the point-by-point bilinear
reference and the ``grid_sample`` path, forward and gradients, and 'auto' takes it only where it
applies (eager CPU float32/float64; traced code keeps ``grid_sample``)."""
import warnings

import pytest
import torch

from vitadapter.layers.deform_attn import DeformableAttention, deformable_sampling
from vitadapter.layers.sparse_sampling import sparse_path_applies

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


# --- the GEMM-accumulated residuals, the spatial prior's 1x1 projections as linear layers and the
# channels-last output stage, against the plain formulations in float64. Each output / gradient
# entry is a sum of at most a few hundred products of O(1) float64 numbers: 1e-12 (outputs) and
# 1e-10 (gradients) of their scale are far above the rounding of either order of summation.

def assert_close_scaled(actual, expected, relative, msg=None):
    torch.testing.assert_close(actual, expected, rtol=0, atol=relative * float(expected.abs().max()) + 1e-300,
                               msg=msg)


def grads(outputs, inputs, seed=0):
    gen = torch.Generator().manual_seed(seed)
    outputs = [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)
    grad_outputs = [torch.randn(o.shape, dtype=o.dtype, generator=gen) for o in outputs]
    return torch.autograd.grad(outputs, inputs, grad_outputs)


@pytest.mark.parametrize('with_scale', [False, True])
def test_linear_residual_equals_the_plain_sum_with_gradients(with_scale):
    from vitadapter.layers.residual import linear_residual
    torch.manual_seed(0)
    linear = torch.nn.Linear(6, 5).double()
    residual = torch.randn(2, 7, 5, dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 7, 6, dtype=torch.float64, requires_grad=True)
    scale = torch.randn(5, dtype=torch.float64, requires_grad=True) if with_scale else None
    inputs = [residual, x, linear.weight, linear.bias] + ([scale] if with_scale else [])
    fused = linear_residual(residual, x, linear, scale)
    plain = residual + (linear(x) if scale is None else scale * linear(x))
    assert_close_scaled(fused, plain, 1e-12)
    for a, e in zip(grads(fused, inputs), grads(plain, inputs)):
        assert_close_scaled(a, e, 1e-10)
    assert residual.grad is None and torch.equal(residual, residual.detach())  # the residual is not written


def test_linear_residual_keeps_the_plain_sum_under_autocast():
    """Under bf16 autocast addmm would round the fp32 residual itself to bf16: the plain sum keeps it."""
    from vitadapter.layers.residual import linear_residual
    torch.manual_seed(0)
    linear = torch.nn.Linear(8, 8)
    residual, x = torch.randn(3, 8) * 1000 + 1, torch.randn(3, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = linear_residual(residual, x, linear)
        expected = residual + linear(x)
    assert out.dtype == torch.float32 and torch.equal(out, expected)


def test_pointwise_projection_equals_the_1x1_convolution():
    from vitadapter.necks.adapter.spatial_prior import pointwise
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(5, 7, kernel_size=1).double()
    for memory_format in (torch.channels_last, torch.contiguous_format):
        x = torch.randn(2, 5, 6, 9, dtype=torch.float64).contiguous(memory_format=memory_format).requires_grad_()
        ours, expected = pointwise(conv, x), conv(x)
        assert ours.shape == expected.shape
        assert_close_scaled(ours, expected, 1e-12)
        inputs = [x, conv.weight, conv.bias]
        for a, e in zip(grads(ours, inputs), grads(expected, inputs)):
            assert_close_scaled(a, e, 1e-10)


@pytest.mark.parametrize('size', [64, 96, 72, 50])
def test_channels_last_output_stage_equals_the_module_path(size):
    """AdapterOutput's eager path (up as a GEMM interleaved by the sum, resampling on channels-last
    tokens) vs its modules (ConvTranspose2d, resample_to_grid), values and all gradients; sizes
    where 2 * ceil(H/8) = ceil(H/4) and where the upsampled map is cropped."""
    from vitadapter.necks.adapter.output import AdapterOutput
    torch.manual_seed(2)
    out = AdapterOutput(12, norm_cfg=dict(type='BN')).double()
    grids = [(-(-size // s), -(-size // s)) for s in (4, 8, 16, 32)]
    priors = [torch.randn(2, 12, *g, dtype=torch.float64, requires_grad=True) for g in grids]
    vit = [torch.randn(2, 12, -(-size // 16), -(-size // 16), dtype=torch.float64, requires_grad=True)
           for _ in range(4)]
    ours = out._channels_last_levels(priors, vit, (16, 16))
    expected = out._levels(priors, vit, (16, 16))
    inputs = priors + vit + [out.up.weight, out.up.bias]
    for a, e in zip(ours, expected):
        assert a.shape == e.shape
        assert_close_scaled(a, e, 1e-12)
    for a, e in zip(grads(ours, inputs), grads(expected, inputs)):
        assert_close_scaled(a, e, 1e-10)


def test_injector_and_extractor_equal_their_plain_formulas():
    """The fused residuals (GEMM-accumulated, gamma folded into output_proj) vs the modules' formulas
    x + gamma * attn(...) and c + attn(...), c + ffn(...), values and parameter gradients."""
    from vitadapter.necks.adapter import interaction_geometry
    from vitadapter.necks.adapter.extractor import Extractor
    from vitadapter.necks.adapter.injector import Injector
    torch.manual_seed(3)
    dim, grid, prior_grids = 12, (4, 4), [(8, 8), (4, 4), (2, 2)]
    geometry = interaction_geometry(grid, (16, 16), prior_grids, (8, 16, 32))
    injector = Injector(dim, num_heads=3, num_points=2, init_values=0.5).double()
    extractor = Extractor(dim, num_heads=3, num_points=2).double().eval()
    for module in (injector, extractor):
        with torch.no_grad():
            for p in module.parameters():
                p.add_(torch.randn_like(p) * 0.3)
    x = torch.randn(2, 16, dim, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 84, dim, dtype=torch.float64, requires_grad=True)

    def plain_injector():
        return x + injector.gamma * injector.attn(injector.query_norm(x), injector.feat_norm(c), geometry.inject)

    def plain_extractor():
        e = extractor
        c1 = c + e.attn(e.query_norm(c), e.feat_norm(x), geometry.extract)
        return c1 + e.ffn(e.ffn_norm(c1), prior_grids)

    for module, fused, plain in ((injector, lambda: injector(x, c, geometry.inject), plain_injector),
                                 (extractor, lambda: extractor(c, x, geometry.extract, prior_grids),
                                  plain_extractor)):
        inputs = [x, c, *module.parameters()]
        ours, expected = fused(), plain()
        assert_close_scaled(ours, expected, 1e-12)
        for a, e in zip(grads(ours, inputs), grads(expected, inputs)):
            assert_close_scaled(a, e, 1e-10)


def test_short_softmax_equals_torch_softmax_with_gradients():
    """The attention weights' softmax over levels x points taken as columns of the transposed
    matrix: the same values and gradient (float64: exp and a sum of <= 16 terms, 1e-14 of O(1)
    values is far above their rounding); a wide last dimension takes torch's softmax as it is."""
    from vitadapter.layers.deform_attn import SHORT_SOFTMAX, softmax_last
    for shape in [(2, 7, 3, 4), (1, 5, 6, 12), (3, 2, SHORT_SOFTMAX + 1)]:
        x = (torch.randn(shape, dtype=torch.float64) * 5).requires_grad_()
        ours, expected = softmax_last(x), torch.softmax(x, -1)
        assert ours.shape == expected.shape
        assert_close_scaled(ours, expected, 1e-14)
        for a, e in zip(grads(ours, [x]), grads(expected, [x])):
            assert_close_scaled(a, e, 1e-14)


def test_sparse_path_forward_and_backward_raise_no_warning():
    """The sparse product's forward and backward (all three gradients) run without a warning:
    torch warns about implicitly skipped sparse invariant checks unless told explicitly, once per
    training step, which buries real warnings in a log."""
    value, locations, weights = (t.requires_grad_() for t in random_case(SHAPES, b=2, lq=3, heads=2, d=4, points=3, dtype=torch.float32))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        out = deformable_sampling(value, value_levels(SHAPES), locations, weights, 'sparse')
        out.square().sum().backward()
    assert all(t.grad is not None for t in (value, locations, weights))
