"""FastUPerHead: the same function as mmseg's UPerHead (same parameters), computed faster with
vitadapter.heads.resized_conv (whose own tests are in test_resized_conv.py)."""
import copy

import warnings

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.models.decode_heads import UPerHead
from mmseg.registry import MODELS

from vitadapter.engine import FastUPerHead

HEAD = dict(in_channels=[16, 24, 32, 32], in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3, 6),
            channels=32, dropout_ratio=0.0, num_classes=5, norm_cfg=dict(type='BN', requires_grad=True))


def levels(batch, height, width, channels=(16, 24, 32, 32)):
    """Four maps at strides 4/8/16/32 of an image of height x width (ceil division)."""
    return [torch.randn(batch, c, -(-height // s), -(-width // s))
            for c, s in zip(channels, (4, 8, 16, 32))]


def float32_bound(exact: torch.Tensor) -> float:
    """How far a float32 UPerHead output may be from the exact (float64) one: 8 * sqrt(1440) *
    eps32 = 3.6e-5 of the output's scale max|exact|.

    The rounding errors of a sum of n terms of random signs grow like sqrt(n) * eps32 of the sum's
    scale (eps32 = 2^-23, twice the unit roundoff); the longest reduction is the PSP bottleneck's
    3x3 convolution over 32 + 4 * 32 channels, n = 1440. An output passes through at most 8
    reducing operations (lateral or PSP convolution, the top-down additions and resizes, FPN
    convolution, resize, fusion convolution, classifier; eval batch norms scale by ~1), whose errors
    are added here, not averaged. Measured: 4e-7 of the scale, for mmseg's UPerHead as for ours."""
    return 8 * 1440 ** 0.5 * torch.finfo(torch.float32).eps * float(exact.abs().max())


def float64_copy(head):
    """The same head in float64, for the exact function."""
    return copy.deepcopy(head).double()


def pair(fast_path='auto', **overrides):
    init_default_scope('mmseg')
    reference = UPerHead(**dict(HEAD, **overrides))
    fast = FastUPerHead(fast_path=fast_path, **dict(HEAD, **overrides))
    fast.load_state_dict(reference.state_dict())  # same keys, both ways
    reference.load_state_dict(fast.state_dict())
    return reference, fast


@pytest.mark.parametrize('height, width', [(64, 64), (72, 104), (36, 50)])
def test_same_outputs_and_gradients_as_uperhead(height, width, monkeypatch):
    import vitadapter.layers.resized_conv as resized_conv
    calls = []
    low_res_path = resized_conv._resized_conv_rows
    spy = lambda *args, **kwargs: calls.append(args[0].shape) or low_res_path(*args, **kwargs)
    monkeypatch.setattr(resized_conv, '_resized_conv_rows', spy)
    # float64: the two are the same function; in float32 the different summation order is
    # amplified by the batch norms' backward (relative differences up to ~1e-2 on gradients of
    # 1e-5 magnitude at UperNet's 512 channels), which says nothing about the math.
    reference, fast = pair(fast_path=True)  # the low-resolution path, forced
    reference.double(), fast.double()
    inputs = [x.double() for x in levels(2, height, width)]
    outputs, grads = [], []
    for head in (reference, fast):
        head.train()
        xs = [x.clone().requires_grad_() for x in inputs]
        logits = head(xs)
        (logits * torch.linspace(-1, 1, logits.numel()).view_as(logits)).sum().backward()
        outputs.append(logits.detach())
        grads.append([x.grad for x in xs] + [p.grad for p in head.parameters()])
    assert outputs[0].shape == (2, 5, -(-height // 4), -(-width // 4))
    # the three coarse FPN levels (the finest has the fused size) and the pooled maps smaller
    # than the coarsest level took the low-resolution path
    coarsest = inputs[-1].shape[2:]
    pooled = [s for s in (1, 2, 3, 6) if s < min(coarsest)]
    assert len(calls) == 3 + len(pooled)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-10, atol=1e-10)
    for got, expected in zip(grads[1], grads[0]):
        scale = expected.abs().max().clamp_min(1e-12)
        assert ((got - expected).abs().max() / scale) < 1e-9
    # eval mode (BN running statistics, as in inference) agrees too
    reference.eval(), fast.eval()
    with torch.no_grad():
        torch.testing.assert_close(fast(inputs), reference(inputs), rtol=1e-10, atol=1e-10)


def test_float32_outputs_agree_to_rounding():
    """In float32 both are within float32 rounding of the exact (float64) function."""
    reference, fast = pair()
    reference.eval(), fast.eval()
    inputs = levels(2, 64, 64)
    with torch.no_grad():
        exact = float64_copy(reference)([x.double() for x in inputs])
        for head in (fast, reference):
            assert (head(inputs).double() - exact).abs().max() <= float32_bound(exact), type(head).__name__


def test_without_norm_the_fusion_bias_is_kept():
    reference, fast = pair(norm_cfg=None)
    assert fast.fpn_bottleneck.conv.bias is not None
    inputs = levels(1, 64, 64)
    with torch.no_grad():
        exact = float64_copy(reference)([x.double() for x in inputs])
        assert (fast(inputs).double() - exact).abs().max() <= float32_bound(exact)


def test_built_from_a_config_and_refuses_a_non_plain_fusion_conv():
    init_default_scope('mmseg')
    head = MODELS.build(dict(type='FastUPerHead', **HEAD))
    assert isinstance(head, FastUPerHead)
    with pytest.raises(ValueError, match="plain 3x3 fusion convolution"):
        FastUPerHead(**dict(HEAD, conv_cfg=dict(type='Conv2dAdaptivePadding')))  # pure torch, any mmcv


def test_bf16_autocast_runs_and_stays_close():
    reference, fast = pair()
    reference.eval(), fast.eval()
    inputs = levels(1, 64, 64)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        got = fast(inputs)
    with torch.no_grad():
        expected = reference(inputs)
    assert got.dtype == torch.bfloat16
    assert (got.float() - expected).abs().max() < 0.05 * expected.abs().max()


@pytest.mark.slow
def test_torch_compile_matches_eager_and_trains():
    _, fast = pair()
    inputs = levels(2, 64, 64)
    fast.eval()
    with torch.no_grad():
        exact = float64_copy(fast)([x.double() for x in inputs])
        # compiled (fused, reordered) float32 within float32 rounding of the exact function
        assert (torch.compile(fast)(inputs).double() - exact).abs().max() <= float32_bound(exact)
    fast.train()
    torch.compile(fast)(inputs).sum().backward()
    assert fast.fpn_bottleneck.conv.weight.grad is not None


def test_levels_of_one_size_and_align_corners_match_uperhead():
    """pyramid='none' gives four maps of one stride: every share is then a direct convolution."""
    for align_corners, inputs in ((False, [torch.randn(2, c, 12, 10) for c in (16, 24, 32, 32)]),
                                  (True, levels(2, 72, 104))):
        reference, fast = pair(align_corners=align_corners)
        reference.double().eval(), fast.double().eval()
        with torch.no_grad():
            xs = [x.double() for x in inputs]
            torch.testing.assert_close(fast(xs), reference(xs), rtol=1e-10, atol=1e-10)


def train_step_outputs(head, inputs):
    """Logits and the gradients of inputs and parameters of one train-mode step."""
    head.train()
    head.zero_grad(set_to_none=True)
    xs = [x.clone().requires_grad_() for x in inputs]
    logits = head(xs)
    (logits * torch.linspace(-1, 1, logits.numel(), dtype=logits.dtype).view_as(logits)).sum().backward()
    return logits.detach(), [x.grad for x in xs] + [p.grad for p in head.parameters()]


@pytest.mark.parametrize('fast_path', [True, False, 'auto'])
def test_every_fast_path_setting_computes_uperhead(fast_path, monkeypatch):
    """Forced low-resolution, forced UPerHead formulation and the measured choice: the same
    function as UPerHead in float64 (outputs and gradients); False never takes the low-resolution
    path."""
    import vitadapter.layers.resized_conv as resized_conv
    calls = []
    low_res_path = resized_conv._resized_conv_rows
    monkeypatch.setattr(resized_conv, '_resized_conv_rows',
                        lambda *a, **k: calls.append(1) or low_res_path(*a, **k))
    reference, fast = pair(fast_path=fast_path)
    reference.double(), fast.double()
    inputs = [x.double() for x in levels(2, 40, 56)]
    expected, expected_grads = train_step_outputs(reference, inputs)
    got, got_grads = train_step_outputs(fast, inputs)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    for g, e in zip(got_grads, expected_grads):
        assert ((g - e).abs().max() / e.abs().max().clamp_min(1e-12)) < 1e-9
    assert (len(calls) > 0) == (fast_path is not False)
    if fast_path == 'auto':  # both fusion convolutions measured once, in train mode with grads
        assert len(fast.path_choice.choices) == 2


def scripted_measure(seconds, log):
    """measure(name, fn): runs fn (as the real clock would) and returns the scripted time."""
    def measure(name, fn):
        fn()
        log.append(name)
        return seconds[name]
    return measure


@pytest.mark.parametrize('faster', ['low_res', 'uperhead'])
def test_auto_keeps_the_formulation_its_measurement_says(faster, monkeypatch):
    import vitadapter.layers.resized_conv as resized_conv
    calls = []
    low_res_path = resized_conv._resized_conv_rows
    monkeypatch.setattr(resized_conv, '_resized_conv_rows',
                        lambda *a, **k: calls.append(1) or low_res_path(*a, **k))
    _, fast = pair()
    log = []
    seconds = {'low_res': 1.0, 'uperhead': 2.0} if faster == 'low_res' else {'low_res': 2.0, 'uperhead': 1.0}
    fast.path_choice.measure = scripted_measure(seconds, log)
    inputs = levels(2, 64, 64)
    fast.train()
    fast(inputs).sum().backward()
    # two fusion convolutions x two candidates x two rounds, alternated
    assert log == ['low_res', 'uperhead'] * 4
    assert set(fast.path_choice.choices.values()) == {faster}
    # cached: the next call with the same key measures nothing and takes the chosen path
    calls.clear()
    fast(inputs).sum().backward()
    assert len(log) == 8
    assert (len(calls) > 0) == (faster == 'low_res')
    # a new key (eval, no grad; another size) is measured again
    fast.eval()
    with torch.no_grad():
        fast(inputs)
        fast(levels(1, 64, 96))
    assert len(log) == 8 + 8 + 8 and len(fast.path_choice.choices) == 6


def test_auto_reuses_its_choice_within_a_size_class():
    """Whole-image inference sees many sizes: an input whose maps all fall in the same size
    classes (half-octaves of pixels) as a measured one reuses its choice; a clearly larger one is
    measured."""
    _, fast = pair()
    log = []
    fast.path_choice.measure = scripted_measure({'low_res': 1.0, 'uperhead': 2.0}, log)
    fast.eval()
    with torch.no_grad():
        fast(levels(1, 128, 128))  # maps 32x32, 16x16, 8x8, 4x4
        assert len(log) == 8
        fast(levels(1, 96, 160))  # 24x40, 12x20, 6x10, 3x5: within 7% of the pixels of each
        fast(levels(1, 128, 120))
        assert len(log) == 8 and len(fast.path_choice.choices) == 2
        fast(levels(1, 256, 256))  # 4x the pixels
        assert len(log) == 16 and len(fast.path_choice.choices) == 4


def test_auto_times_nothing_when_the_run_asks_for_determinism():
    """mmengine's randomness=dict(deterministic=True) turns on torch's deterministic algorithms:
    then 'auto' takes the fixed (low-resolution) formulation, like cudnn.benchmark is off."""
    import vitadapter.layers.resized_conv as resized_conv
    _, fast = pair()
    log = []
    fast.path_choice.measure = scripted_measure({'low_res': 2.0, 'uperhead': 1.0}, log)
    calls = []
    low_res_path = resized_conv._resized_conv_rows
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        resized_conv_rows = lambda *a, **k: calls.append(1) or low_res_path(*a, **k)  # noqa: E731
        resized_conv._resized_conv_rows = resized_conv_rows
        fast.eval()
        with torch.no_grad():
            fast(levels(1, 64, 64))
    finally:
        resized_conv._resized_conv_rows = low_res_path
        torch.use_deterministic_algorithms(previous)
    assert log == [] and fast.path_choice.choices == {} and calls


@pytest.mark.parametrize('faster', ['low_res', 'uperhead'])
def test_auto_measures_nothing_under_the_flop_counter_and_counts_what_runs(faster):
    """Under FlopCounterMode nothing is timed (the counter would time its own Python code); once
    a choice is cached for the input key, the counter sees that formulation: the benchmark's FLOP
    column is the work of the computation that actually runs."""
    from torch.utils.flop_counter import FlopCounterMode

    def count(head, inputs):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            head(inputs)
        return counter.get_total_flops()

    reference, fast = pair()
    reference.eval(), fast.eval()
    log = []
    seconds = {'low_res': 1.0, 'uperhead': 2.0} if faster == 'low_res' else {'low_res': 2.0, 'uperhead': 1.0}
    fast.path_choice.measure = scripted_measure(seconds, log)
    inputs = levels(1, 64, 64)
    uperhead_flops = count(reference, inputs)
    before = count(fast, inputs)  # no choice yet: the default (low-resolution) formulation
    assert log == [] and fast.path_choice.choices == {}
    assert before < uperhead_flops
    with torch.no_grad():
        fast(inputs)  # measured here, both fusion convolutions
    assert len(fast.path_choice.choices) == 2 and len(log) == 8
    after = count(fast, inputs)
    assert len(log) == 8  # the counted call measured nothing
    assert (after == uperhead_flops) == (faster == 'uperhead')
    assert (after == before) == (faster == 'low_res')


def test_auto_in_several_processes_takes_the_fixed_formulation_and_says_so(monkeypatch):
    """Each process would time on its own (seen flaky under FSDP): with a process group of more
    than one, 'auto' measures nothing, takes the low-resolution formulation and warns once."""
    _, fast = pair()
    log = []
    fast.path_choice.measure = scripted_measure({'low_res': 2.0, 'uperhead': 1.0}, log)
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)
    monkeypatch.setattr(torch.distributed, 'get_world_size', lambda *a, **k: 2)
    fast.eval()
    with torch.no_grad(), pytest.warns(UserWarning, match="several processes"):
        fast(levels(1, 64, 64))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('error')
        fast(levels(1, 64, 64))  # once only
    assert log == [] and fast.path_choice.choices == {}


def test_fast_path_refuses_an_unknown_setting():
    init_default_scope('mmseg')
    with pytest.raises(ValueError, match=r"fast_path='yes'.*'auto'"):
        FastUPerHead(fast_path='yes', **HEAD)
    # the default is the measured choice
    assert FastUPerHead(**HEAD).fast_path == 'auto'
