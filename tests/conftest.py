"""Shared fixtures: tiny versions of real timm ViT families, so tests run in seconds on a CPU.

The architectures are the real ones (same classes, prefix tokens, position embeddings, norms);
only depth and width are shrunk through timm's own keyword overrides. No weights are downloaded.
"""
import pytest
import torch

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


def tiny(family: str, **overrides) -> dict:
    """kwargs for ViTPyramid / TimmViTTrunk building a tiny ``family`` model."""
    name, extra = FAMILIES[family]
    return dict(dict(model_name=name, img_size=64, **TINY, **extra), **overrides)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
