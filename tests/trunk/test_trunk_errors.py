"""The trunk refuses what it cannot take, before building where it can, saying why and what to use."""
import pytest
import timm
import torch

from vitadapter import TimmViTTrunk, ViTAdapter, ViTPyramid
from vitadapter.trunk import models

from conftest import TINY, tiny


@pytest.mark.parametrize('name,cls', [('resnet18', 'ResNet'), ('convnext_tiny', 'ConvNeXt'),
                                      ('efficientnet_b0', 'EfficientNet')])
def test_cnn_is_refused_before_building_with_vit_arguments(name, cls, monkeypatch):
    """timm would raise "ResNet.__init__() got an unexpected keyword argument 'img_size'"."""
    built = []
    monkeypatch.setattr(timm, 'create_model', lambda *a, **k: built.append(a))
    with pytest.raises(ValueError, match=rf"'{name}' \({cls} in timm\.models\.\w+\) is not a plain "
                                         rf"Vision Transformer .*features_only=True"):
        ViTPyramid(model_name=name, img_size=64)
    assert not built


def test_hierarchical_vit_is_refused_after_building():
    """Swin takes img_size (it is built), but has stages, not one token sequence."""
    with pytest.raises(ValueError, match=r"'swin_tiny_patch4_window7_224' \(SwinTransformer in "
                                         r"timm\.models\.swin_transformer\) is not a plain Vision "
                                         r"Transformer \(no blocks, num_prefix_tokens\).*features_only"):
        ViTPyramid(model_name='swin_tiny_patch4_window7_224', img_size=64, depths=(1, 1, 1, 1),
                   embed_dim=32, num_heads=(1, 1, 1, 1), window_size=4)


@pytest.mark.skipif(not timm.is_model('naflexvit_base_patch16_siglip'), reason='timm without NaFlexVit')
@pytest.mark.parametrize('backbone', [ViTPyramid, ViTAdapter])
def test_naflexvit_is_refused_with_the_reason_and_the_fixed_grid_sibling(backbone):
    with pytest.raises(ValueError) as info:
        backbone(model_name='naflexvit_base_patch16_siglip', img_size=64)
    message = str(info.value)
    assert "(NaFlexVit in timm.models.naflexvit) is a NaFlex ViT" in message
    assert 'variable-resolution' in message and 'no fixed `patch_embed` grid' in message
    assert "'vit_base_patch16_siglip_224'" in message
    assert timm.is_model('vit_base_patch16_siglip_224')  # the advice names a real model
    assert 'hierarchical' not in message


def test_class_check_leaves_plain_vits_and_hub_names_alone():
    assert models.registered_class('vit_base_patch16_224.augreg_in21k') is timm.models.VisionTransformer
    assert models.registered_class('hf-hub:timm/vit_base_patch16_224.augreg_in21k') is None

    @timm.models.register_model
    def unannotated_test_vit(pretrained=False, **kwargs):
        return timm.models.VisionTransformer(**kwargs)
    assert models.registered_class('unannotated_test_vit') is None  # decided after building
    models.check_model_class('unannotated_test_vit')
    for name in ('vit_base_patch16_224', 'eva02_base_patch16_clip_224', 'beit_base_patch16_224',
                 'deit_base_distilled_patch16_224', 'vit_small_patch14_reg4_dinov2'):
        models.check_model_class(name)  # no error


def test_token_hooks_check_is_public_and_refuses_other_token_layouts():
    """DeiT's distilled ViT (a VisionTransformer subclass) adds a distillation token its own way:
    ViTPyramid takes it (timm's forward_intermediates), the token hooks do not."""
    kwargs = dict(model_name='deit_tiny_distilled_patch16_224', img_size=64, **TINY)
    trunk = TimmViTTrunk(**kwargs, out_indices=(3,))
    assert trunk(torch.randn(1, 3, 64, 64)).maps[0].shape == (1, 64, 4, 4)
    with pytest.raises(ValueError, match=r"VisionTransformerDistilled\) embeds its tokens its own way"):
        trunk.check_token_hooks()
    with pytest.raises(ValueError, match='embeds its tokens its own way'):
        ViTAdapter(**kwargs)
    TimmViTTrunk(**tiny('eva02')).check_token_hooks()  # no error


def test_grad_checkpointing_needs_a_timm_that_recomputes_intermediates(monkeypatch):
    """Models the trunk runs through timm's forward_intermediates (DeiT's distilled ViT): before
    timm 1.0.16 it ignores grad checkpointing; say so, never store every block silently. (The
    block API recomputes the blocks itself, on any timm.)"""
    model = ViTPyramid(model_name='deit_tiny_distilled_patch16_224', img_size=64, **TINY,
                       grad_checkpointing=True)
    assert model.trunk.model.grad_checkpointing  # handed to timm
    ViTPyramid(**tiny('vit'), grad_checkpointing=True)(torch.randn(1, 3, 64, 64)).__len__()
    monkeypatch.setattr(timm, '__version__', '1.0.15')
    with pytest.raises(ValueError, match=r"grad_checkpointing=True needs timm >= 1\.0\.16.*timm 1\.0\.15 "
                                         r"is installed"):
        model(torch.randn(1, 3, 64, 64))
    with torch.no_grad():  # nothing to recompute without gradients
        model(torch.randn(1, 3, 64, 64))
    monkeypatch.setattr(timm, '__version__', '1.0.16')
    model(torch.randn(1, 3, 64, 64))


def test_integer_images_are_refused_with_the_fix():
    """A uint8 image tensor (as read from disk) would end in torch's dtype mismatch deep in the
    patch embedding; the trunk says what to do instead."""
    model = ViTPyramid(**tiny('vit'))
    with pytest.raises(ValueError, match=r'floating-point images, got a torch.uint8 tensor: convert it with '
                                         r'images.float\(\) and normalise'):
        model(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r'expected images \(B, 3, H, W\), got \(3, 64, 64\)'):
        model(torch.zeros(3, 64, 64))
