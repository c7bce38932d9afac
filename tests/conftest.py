"""Shared fixtures: tiny versions of real timm ViT families, so tests run in seconds on a CPU.

The architectures are the real ones (same classes, prefix tokens, position embeddings, norms);
only depth and width are shrunk through timm's own keyword overrides. No weights are downloaded.
"""
import importlib.util
import os

import pytest
import timm
import torch

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
MMSEG_MODULES = ['test_configs.py', 'test_fast_uper_head.py', 'test_linear_probe.py',
                 'test_mmseg_integration.py', 'test_stock_mmseg_tools.py', 'test_training.py',
                 'test_benchmark.py', 'test_vit_adapter_benchmark.py', 'test_fsdp.py']
collect_ignore = [] if HAS_MMSEG else MMSEG_MODULES
requires_mmseg = pytest.mark.skipif(not HAS_MMSEG, reason='needs the mmseg extra (core-only environment)')

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
