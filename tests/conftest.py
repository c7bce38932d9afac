"""Shared fixtures: tiny versions of real timm ViT families, so tests run in seconds on a CPU.

The architectures are the real ones (same classes, prefix tokens, position embeddings, norms);
only depth and width are shrunk through timm's own keyword overrides. No weights are downloaded.
"""
import importlib.util
import math
import os

import pytest
import timm
import torch

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)  # the repository

# The mmseg integration (mmseg, mmengine, mmcv) is an extra: the core lane of CI runs this suite in
# an environment with only torch + timm, where the modules below are not collected and single
# tests that need mmseg are skipped. The full lanes set VITADAPTER_REQUIRE_MMSEG=1, which turns a
# missing or broken mmseg into an error instead of skipped tests.
HAS_MMSEG = all(importlib.util.find_spec(name) is not None for name in ('mmseg', 'mmengine', 'mmcv'))
if os.environ.get('VITADAPTER_REQUIRE_MMSEG') == '1':
    if importlib.util.find_spec('mmpretrain') is not None:  # (not on the upstream stack)
        import mmpretrain.models  # noqa: F401  (the parity tests build mmpretrain's ViT)
    import mmseg.models  # noqa: F401  (raises here, at collection, if the stack is broken)
    HAS_MMSEG = True
# tests/engine (the mm* glue) and the benchmark's tests (it runs mmseg configs) need mmseg
collect_ignore_glob = [] if HAS_MMSEG else ['engine/*', 'tools/test_*benchmark*.py']
requires_mmseg = pytest.mark.skipif(not HAS_MMSEG, reason='needs the mmseg extra (core-only environment)')

MARKERS = {
    'stack': 'its result depends on the installed mm* stack (mmseg/mmengine/mmcv/mmdet): the '
             'upstream CI lane runs these on OpenMMLab\'s releases',
    'slow': 'a multi-process or long run that proves something the quick tests cannot: left out '
            'of the README test command (-m "not slow"), run by a step of its own in the default CI lane',
}


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line('markers', f'{name}: {text}')


def pytest_collection_modifyitems(config, items):
    """Everything under tests/engine (the mm* glue) and every test that needs the mmseg extra
    elsewhere is marked ``stack``: the upstream CI lane runs ``-m stack`` on OpenMMLab's releases."""
    engine = os.path.join(TESTS, 'engine') + os.sep
    for item in items:
        needs_mm = any(m.name == 'skipif' and 'mmseg extra' in str(m.kwargs.get('reason', ''))
                       for m in item.iter_markers())
        if str(item.fspath).startswith(engine) or needs_mm:
            item.add_marker(pytest.mark.stack)

TINY = dict(depth=4, embed_dim=64, num_heads=2)

# family -> (timm name, extra kwargs). Patch sizes, class/register tokens, rope, layer scale and
# pre-norm all differ between them.
FAMILIES = {
    'vit': ('vit_base_patch16_224', {}),
    'deit3': ('deit3_small_patch16_224', {}),
    'eva02': ('eva02_base_patch16_clip_224', {}),
    'dinov2': ('vit_small_patch14_dinov2', {}),
    'dinov2_reg': ('vit_small_patch14_reg4_dinov2', {}),
    'clip': ('vit_base_patch16_clip_224', {}),
    'siglip': ('vit_base_patch16_siglip_224', {}),
}
# DINOv3 (timm >= 1.0.20; the oldest supported timm lane has none): RoPE, class + 4 register tokens,
# layer scale, no absolute position embedding
HAS_TIMM_DINOV3 = 'vit_small_patch16_dinov3' in timm.list_models('*dinov3*')
if HAS_TIMM_DINOV3:
    FAMILIES['dinov3'] = ('vit_small_patch16_dinov3', {})
requires_timm_dinov3 = pytest.mark.skipif(not HAS_TIMM_DINOV3, reason='this timm has no DINOv3 models')


def tiny(family: str, **overrides) -> dict:
    """kwargs for ViTPyramid / TimmViTTrunk building a tiny ``family`` model."""
    name, extra = FAMILIES[family]
    return dict(dict(model_name=name, img_size=64, **TINY, **extra), **overrides)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    deterministic = (torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled())
    yield
    # an in-process mmengine Runner with randomness=dict(deterministic=True) (the tiny training
    # configs) turns torch's deterministic algorithms on for the whole process; later tests get
    # the setting they started with (FastUPerHead's 'auto' measures nothing while it is on)
    torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
    # a test that leaves another default dtype behind changes every later test's arithmetic
    leaked = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    assert leaked == torch.float32, f'the test left torch.get_default_dtype() == {leaked}'


# ----------------------------------------------------------------------------- shared helpers
# What third-party packages print by themselves when mmseg is imported on the default stack: the
# onedl fork's notice (stdout) and mmcv's warning that its compiled attention is missing (stderr)
THIRD_PARTY_NOTICES = ('Could not import OneDL', "Fail to import ``MultiScaleDeformableAttention``",
                       "warnings.warn('Fail to import ``MultiScaleDeformableAttention``")


def own_lines(text: str):
    """The lines of a tool's output without the third-party notices above."""
    return [line for line in text.splitlines() if not any(n in line for n in THIRD_PARTY_NOTICES)]


def rel_error(ours, theirs) -> float:
    """max |ours - theirs| / max |theirs| (tensors of one shape, or sequences of them: the largest)."""
    if isinstance(ours, (list, tuple)):
        assert len(ours) == len(theirs), (len(ours), len(theirs))
        return max(rel_error(a, b) for a, b in zip(ours, theirs))
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, \
        (ours.shape, theirs.shape, ours.dtype, theirs.dtype)
    return float((ours - theirs).abs().max() / theirs.abs().max())


def ceil_sizes(size, strides=(4, 8, 16, 32)):
    """(ceil(H / s), ceil(W / s)) for every stride: the levels of an image of ``size`` (H, W)."""
    return [(math.ceil(size[0] / s), math.ceil(size[1] / s)) for s in strides]


def gradients(model: torch.nn.Module) -> dict:
    """{name: gradient} of the parameters that got one."""
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same_gradients(expected: dict, got: dict, rel: float = 1e-10) -> None:
    """The same parameters have gradients, each within ``rel`` of the largest gradient. For two
    float64 backward passes of one function (grad checkpointing on and off, say) the defaults hold
    with a wide margin: they differ only in the order autograd sums contributions, a few roundings
    (2^-53) of each gradient's scale, while a wrong recomputation is off by order 1."""
    assert expected.keys() == got.keys(), sorted(set(expected) ^ set(got))
    scale = max(g.abs().max().item() for g in expected.values())
    for name, g in expected.items():
        assert (g - got[name]).abs().max().item() <= rel * scale, name


def saved_by_autograd(fn, *args):
    """(count, elements) of the tensors autograd saves for the backward pass while ``fn(*args)``
    runs: the activation memory of a training step, counted (no process memory is read)."""
    count = numel = 0

    def pack(t):
        nonlocal count, numel
        count, numel = count + 1, numel + t.numel()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*args)
    return count, numel


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory):
    """The generated shapes set, small (16 train / 4 val images of 32x32), once per session."""
    from vitadapter.data import make_shapes_dataset
    return make_shapes_dataset(str(tmp_path_factory.mktemp('shapes')), num_train=16, num_val=4,
                               size=(32, 32))


@pytest.fixture
def default_torch_allowlist():
    """torch's own weights-only allowlist, without what other code in this process added (the
    training runtime allows mmengine's HistoryBuffer and numpy types process-wide)."""
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    yield
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(saved)
