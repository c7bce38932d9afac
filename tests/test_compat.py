"""vitadapter.compat: every private third-party name vitadapter uses, one test each, against the
installed releases (an upgrade that moves one fails here, by name)."""
import io

import numpy as np
import pytest
import timm
import torch
import torch.nn as nn

from vitadapter import compat

from conftest import requires_timm_dinov3


def test_every_wrapped_name_says_where_it_was_checked():
    assert len(compat.CHECKED) == 9 and all(compat.CHECKED.values())


def test_current_dispatch_mode():
    from torch.utils.flop_counter import FlopCounterMode
    assert compat.current_dispatch_mode() is None
    with FlopCounterMode(display=False):
        assert compat.current_dispatch_mode() is not None


def test_is_fsdp_flattened(tmp_path):
    import torch.distributed as dist
    from torch.distributed.fsdp import FullyShardedDataParallel
    dist.init_process_group('gloo', store=dist.HashStore(), rank=0, world_size=1)
    try:
        plain = nn.Linear(4, 3)
        assert not compat.is_fsdp_flattened(plain.weight)
        wrapped = FullyShardedDataParallel(nn.Linear(4, 3), device_id=torch.device('cpu'))
        assert all(compat.is_fsdp_flattened(p) for p in wrapped.parameters())
    finally:
        dist.destroy_process_group()


def test_activation_checkpointing_wraps_and_recomputes():
    impl, apply, wrapper = compat.activation_checkpointing()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 2)).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    model(x).sum().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    from functools import partial
    apply(model, checkpoint_wrapper_fn=partial(wrapper, checkpoint_impl=impl.NO_REENTRANT),
          check_fn=lambda m: isinstance(m, nn.Linear))
    assert sum(type(m).__name__ == 'CheckpointWrapper' for m in model.modules()) == 2
    model(x).sum().backward()
    assert all(torch.allclose(a, p.grad, rtol=0, atol=1e-14) for a, p in zip(expected, model.parameters()))


def test_timm_pretrained_source():
    model = timm.create_model('vit_tiny_patch16_224', pretrained=False,
                              pretrained_cfg_overlay=dict(file='/weights/vit.pth'))
    assert compat.timm_pretrained_source(model.pretrained_cfg) == ('file', '/weights/vit.pth')
    hub = timm.create_model('vit_tiny_patch16_224.augreg_in21k', pretrained=False).pretrained_cfg
    kind, location = compat.timm_pretrained_source(hub)
    assert kind == 'hf-hub' and 'vit_tiny_patch16_224.augreg_in21k' in str(location)


def test_feature_take_indices():
    assert compat.feature_take_indices(12, 4) == ([8, 9, 10, 11], 11)
    assert compat.feature_take_indices(12, [2, -1]) == ([2, 11], 11)


@requires_timm_dinov3
def test_rope_embedding_is_timms_and_traces_with_symbolic_sizes():
    from timm.layers import RotaryEmbeddingDinoV3
    rope = RotaryEmbeddingDinoV3(16, temperature=100.0, rotate_half=True).eval()
    for grid in [(3, 5), (4, 4)]:
        assert torch.equal(compat.rope_embedding(rope, grid), rope.get_embed(shape=list(grid)))

    class Rope(nn.Module):
        def forward(self, x):
            return compat.rope_embedding(rope, (x.shape[2], x.shape[3]))

    dims = {2: torch.export.Dim('h', min=2, max=64), 3: torch.export.Dim('w', min=2, max=64)}
    program = torch.export.export(Rope(), (torch.zeros(1, 1, 3, 5),), dynamic_shapes=({**dims},), strict=False)
    for grid in [(3, 5), (7, 2)]:  # the graph serves other grids with timm's own values
        torch.testing.assert_close(program.module()(torch.zeros(1, 1, *grid)), rope.get_embed(shape=list(grid)),
                                   rtol=0, atol=0)


def test_numpy_pickle_globals_let_weights_only_read_numpy_values(default_torch_allowlist):
    buffer = io.BytesIO()
    torch.save({'array': np.arange(3.0), 'scalar': np.float64(1.5), 'dtype': np.dtype('int32')}, buffer)
    buffer.seek(0)
    with pytest.raises(Exception, match='(?i)weights_only|unsupported global'):
        with torch.serialization.safe_globals([]):
            torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    with torch.serialization.safe_globals(compat.numpy_pickle_globals()):
        data = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    assert data['scalar'] == 1.5 and list(data['array']) == [0.0, 1.0, 2.0] and data['dtype'] == np.dtype('int32')


def test_normalize_last_dim_and_its_backward_are_layer_norms():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 16, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(2, 3, 4, 16, dtype=torch.float64)
    x_hat, rstd = compat.normalize_last_dim(x.detach(), 1e-6)
    expected = torch.nn.functional.layer_norm(x, (16,), eps=1e-6)
    expected.backward(grad)
    assert rstd.shape == (2, 3, 4, 1)
    torch.testing.assert_close(rstd, torch.rsqrt(x.detach().var(-1, unbiased=False, keepdim=True) + 1e-6))
    torch.testing.assert_close(x_hat, expected.detach())
    torch.testing.assert_close(compat.normalize_last_dim_backward(grad, x_hat, rstd), x.grad)


def test_depthwise_gelu_backward_is_autograds():
    torch.manual_seed(0)
    y = torch.randn(2, 4, 5, 6, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    torch.nn.functional.conv2d(torch.nn.functional.gelu(y), weight, padding=1, groups=4).backward(grad)
    grad_y, grad_w = compat.depthwise_gelu_backward(grad, y.detach(), weight.detach())
    torch.testing.assert_close(grad_y, y.grad)
    torch.testing.assert_close(grad_w, weight.grad)
