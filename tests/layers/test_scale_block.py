"""EoMT's scale block: the training path's matmul upsampling is the transposed convolution."""
import copy

import pytest
import torch

from vitadapter.layers import ScaleBlock


def _block_and_input(channels_last: bool):
    torch.manual_seed(0)
    block = ScaleBlock(8).double()
    x = torch.randn(2, 8, 3, 5, dtype=torch.float64)
    if channels_last:  # as the patch map comes from the tokens: (B, N, C) transposed
        x = torch.randn(2, 15, 8, dtype=torch.float64).transpose(1, 2).reshape(2, 8, 3, 5)
    return block, x


def test_training_upsample_is_the_transposed_convolution_with_its_gradients():
    for channels_last in (False, True):
        block, x = _block_and_input(channels_last)
        x.requires_grad_(True)
        grad = torch.randn(2, 8, 6, 10, dtype=torch.float64)
        ours = block.upsample(x)
        ours.backward(grad)
        ours_grads = [x.grad.clone()] + [p.grad.clone() for p in block.conv1.parameters()]
        x.grad = None
        block.zero_grad()
        theirs = block.conv1(x)
        theirs.backward(grad)
        theirs_grads = [x.grad] + [p.grad for p in block.conv1.parameters()]
        # each value is a sum of C = 8 products (+ bias): |error| <= 8 * eps * sum |terms|
        eps = torch.finfo(torch.float64).eps
        terms = torch.nn.functional.conv_transpose2d(x.abs(), block.conv1.weight.abs(), stride=2)
        assert ours.shape == theirs.shape == (2, 8, 6, 10)
        assert ((ours - theirs).abs() <= 2 * 9 * eps * (terms + block.conv1.bias.abs()[:, None, None])).all()
        # gradients: sums of n products a * b; |error| <= n * eps * n * max|a| * max|b|, with
        # n = C_out * 4 (input: gradient x weight), B * h * w (weight: input x gradient),
        # B * 2h * 2w (bias: the gradient)
        w, g, xa = (block.conv1.weight.abs().max(), grad.abs().max(), x.detach().abs().max())
        bounds = [32 * 32 * eps * g * w, 30 * 30 * eps * xa * g, 120 * 120 * eps * g]
        for a, b, bound in zip(ours_grads, theirs_grads, bounds):
            assert (a - b).abs().max() <= bound

def test_inference_runs_the_convolution_itself():
    block, x = _block_and_input(True)
    calls = []
    block.conv1.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        y = block(x)
    assert calls == [1] and y.shape == (2, 8, 6, 10)
    x.requires_grad_(True)
    block(x)
    assert calls == [1]  # with gradients: the matmul path, not the module


def test_the_lean_training_tail_passes_gradcheck():
    from vitadapter.layers.scale_block import _GeluDepthwiseNormalize
    torch.manual_seed(0)
    y = torch.randn(2, 3, 4, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: _GeluDepthwiseNormalize.apply(a, b, 1e-6), (y, weight))


def test_training_head_equals_the_modules_composed_plainly_with_gradients():
    """The mask head while training (affines folded, lean tail) against conv1 -> GELU -> depthwise
    -> LayerNorm2d per block and einsum, float64: values and every parameter's gradient."""
    from vitadapter.layers import MaskClassificationHead
    torch.manual_seed(0)
    head = MaskClassificationHead(8, 3, (16, 16)).double()  # two scale blocks
    for p in head.parameters():  # norms away from weight 1 / bias 0, so the folds are exercised
        torch.nn.init.normal_(p, 0.3, 0.5)
    queries = torch.randn(2, 4, 8, dtype=torch.float64, requires_grad=True)
    patch_map = torch.randn(2, 15, 8, dtype=torch.float64).transpose(1, 2).reshape(2, 8, 3, 5).requires_grad_()
    grad = torch.randn(2, 4, 12, 20, dtype=torch.float64)

    def plain():
        pixels = patch_map
        for block in head.upscale:
            pixels = block.norm(block.conv2(block.act(block.conv1(pixels))))
        return torch.einsum('bqc,bchw->bqhw', head.mask_head(queries), pixels)

    def run(fn):
        head.zero_grad()
        queries.grad = patch_map.grad = None
        out = fn()
        out.backward(grad)
        return [out.detach()] + [t.grad.clone() for t in (queries, patch_map)] + \
            [p.grad.clone() for p in head.upscale.parameters()] + [p.grad.clone() for p in head.mask_head.parameters()]

    ours, theirs = run(lambda: head(queries, patch_map)[0]), run(plain)
    # float64 throughout; a few hundred operations per value, each within eps relative: 1e-10 is
    # far above the rounding (~1e-13) and far below any wrong term (O(1))
    for a, b in zip(ours, theirs):
        assert (a - b).abs().max() <= 1e-10 * (1 + b.abs().max())


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_training_head_under_autocast_is_as_accurate_as_the_plain_modules(dtype):
    """AMP: the lean path casts its backward to the forward's dtype; its gradients are as close
    to float64's as those of the modules composed plainly under the same autocast."""
    from vitadapter.layers import MaskClassificationHead
    torch.manual_seed(0)
    head = MaskClassificationHead(16, 3, (16, 16))
    queries = torch.randn(2, 4, 16)
    patch_map = torch.randn(2, 16, 3, 5)
    grad = torch.randn(2, 4, 12, 20)

    def plain(h, q, p):
        for block in h.upscale:
            p = block.norm(block.conv2(block.act(block.conv1(p))))
        return torch.einsum('bqc,bchw->bqhw', h.mask_head(q), p)

    def grads(h, fn, cast=None):
        h.zero_grad()
        q, p = queries.clone(), patch_map.clone()
        if cast is None:
            with torch.autocast('cpu', dtype=dtype):
                out = fn(h, q, p)
        else:
            h, q, p = h.to(cast), q.to(cast), p.to(cast)
            out = fn(h, q, p)
        out.float().backward(grad.to(out.dtype))
        return torch.cat([t.grad.flatten().double() for t in h.upscale.parameters()])

    reference = grads(copy.deepcopy(head).double(), plain, torch.float64)
    lean = grads(head, lambda h, q, p: h(q, p)[0])
    plain_amp = grads(head, plain)
    scale = reference.abs().max()
    err_lean, err_plain = (lean - reference).abs().max(), (plain_amp - reference).abs().max()
    assert err_lean <= 2 * err_plain + torch.finfo(dtype).eps * scale, (err_lean, err_plain)
