"""Parity with the original implementations: weights from Hugging Face transformers, mmseg,
mmpretrain and the official DINOv2 layout, converted and loaded into ViTPyramid, give the same
patch tokens as the original model, at the stored size and at a size where the position
embeddings are interpolated (max abs diff <= 1e-4 in fp32; most are bitwise equal).

Every original model is built here with random weights (tiny: 4 blocks, width 64) and saved the
way its ecosystem saves it; no weights are downloaded.
"""
import math

import pytest
import timm
import torch
import torch.nn.functional as F

from vitadapter import TimmViTTrunk, ViTPyramid

TOL = 1e-4
BLOCKS = (0, 1, 2, 3)


def randomize(model: torch.nn.Module) -> torch.nn.Module:
    """Every parameter ~ N(0, 0.1), LayerNorm weights ~ 1 + N(0, 0.1): position embeddings and
    tokens are far from their zero initialisation, so interpolation differences show."""
    with torch.no_grad():
        for module in model.modules():
            for name, p in module.named_parameters(recurse=False):
                p.normal_(0, 0.1)
                if isinstance(module, torch.nn.LayerNorm) and name == 'weight':
                    p.add_(1)
    model.eval()  # (mmseg's VisionTransformer.train returns None)
    return model


def as_map(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, h*w, C) patch tokens -> (B, C, h, w)."""
    return tokens.reshape(tokens.shape[0], h, w, -1).permute(0, 3, 1, 2)


def max_diffs(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape, (a.shape, b.shape)
    return [float((a - b).abs().max()) for a, b in zip(ours, theirs)]


def vit_trunk(model_name: str, **kwargs) -> TimmViTTrunk:
    """ViTPyramid's trunk, returning token maps on the patch grid (no stride-16 resampling of
    patch-14 maps), tiny."""
    return TimmViTTrunk(model_name, depth=4, embed_dim=64, num_heads=2, **kwargs).eval()


def trunk_outputs(trunk: TimmViTTrunk, x: torch.Tensor):
    with torch.no_grad():
        return trunk(x)


# ---------------------------------------------------------------------------- Hugging Face
HF = {
    # kind: (transformers classes, config kwargs, timm name, patch, registers)
    'vit': ('ViTConfig', 'ViTModel', dict(intermediate_size=256, image_size=64, patch_size=16,
                                          layer_norm_eps=1e-6), 'vit_base_patch16_224', 16, 0),
    'dinov2': ('Dinov2Config', 'Dinov2Model', dict(image_size=56, patch_size=14),
               'vit_small_patch14_dinov2', 14, 0),
    'dinov2_reg': ('Dinov2WithRegistersConfig', 'Dinov2WithRegistersModel',
                   dict(image_size=56, patch_size=14, num_register_tokens=4),
                   'vit_small_patch14_reg4_dinov2', 14, 4),
}


def build_hf(kind: str, **overrides):
    transformers = pytest.importorskip('transformers')
    config_cls, model_cls, kwargs, _, _, _ = HF[kind]
    config = getattr(transformers, config_cls)(hidden_size=64, num_hidden_layers=4,
                                               num_attention_heads=2, **dict(kwargs, **overrides))
    return randomize(getattr(transformers, model_cls)(config))


def hf_reference(hf, kind: str, x: torch.Tensor):
    """HF's per-layer hidden states -> (maps, class tokens, register tokens, final normed map)."""
    _, _, _, _, patch, registers = HF[kind]
    h, w = x.shape[-2] // patch, x.shape[-1] // patch
    extra = dict(interpolate_pos_encoding=True) if kind == 'vit' else {}
    with torch.no_grad():
        out = hf(pixel_values=x, output_hidden_states=True, **extra)
    layers = out.hidden_states[1:]
    maps = [as_map(t[:, 1 + registers:], h, w) for t in layers]
    regs = [t[:, 1:1 + registers] for t in layers] if registers else None
    return maps, [t[:, 0] for t in layers], regs, as_map(out.last_hidden_state[:, 1 + registers:], h, w)


@pytest.mark.parametrize('saved_as', ['folder', 'safetensors'])
@pytest.mark.parametrize('kind', sorted(HF))
def test_hugging_face_parity(tmp_path, kind, saved_as):
    hf = build_hf(kind)
    hf.save_pretrained(tmp_path / 'hf')  # config.json + model.safetensors
    source = tmp_path / 'hf' if saved_as == 'folder' else tmp_path / 'hf' / 'model.safetensors'
    _, _, kwargs, name, patch, registers = HF[kind]
    size = kwargs['image_size']
    common = dict(img_size=size, out_indices=BLOCKS, checkpoint=str(source))
    model, normed = vit_trunk(name, **common), vit_trunk(name, **common, norm=True)
    report = model.load_report
    assert not report.missing and not report.unexpected and not report.resized
    if kind == 'vit':
        (reason, keys), = report.dropped.items()
        assert reason == ("HF pooler (dense + tanh, never pretrained; the class token's hidden "
                          "state is the feature)")
        assert sorted(keys) == ['pooler.dense.bias', 'pooler.dense.weight']
        assert 'dropped, HF pooler' in str(report)
    expected_interp = 'timm' if registers else 'bicubic'
    assert report.pos_embed_interp == model.pos_embed_interp == expected_interp
    for x in (torch.randn(2, 3, size, size), torch.randn(2, 3, 5 * patch, 7 * patch)):
        maps, cls, regs, last = hf_reference(hf, kind, x)
        ours = trunk_outputs(model, x)
        assert max(max_diffs(ours.maps, maps)) <= TOL
        assert max(max_diffs(ours.class_tokens, cls)) <= TOL
        if registers:
            assert max(max_diffs(ours.register_tokens, regs)) <= TOL
        assert max(max_diffs(trunk_outputs(normed, x).maps[-1:], [last])) <= TOL


@pytest.mark.parametrize('kind', ['vit', 'dinov2'])
def test_hugging_face_interpolation_is_followed(tmp_path, kind):
    """At an interpolated size, timm's own rule (antialiased bicubic) does not give HF's features:
    the trunk follows the source's rule by default, and pos_embed_interp overrides it."""
    hf = build_hf(kind)
    hf.save_pretrained(tmp_path)
    _, _, kwargs, name, patch, _ = HF[kind]
    x = torch.randn(1, 3, 5 * patch, 7 * patch)
    maps, _, _, _ = hf_reference(hf, kind, x)
    timm_rule = vit_trunk(name, img_size=kwargs['image_size'], out_indices=BLOCKS,
                          checkpoint=str(tmp_path), pos_embed_interp='timm')
    assert timm_rule.load_report.pos_embed_interp == 'timm'
    assert min(max_diffs(trunk_outputs(timm_rule, x).maps, maps)) > 1e-3


def test_hugging_face_vit_layer_norm_eps_is_noted(tmp_path):
    """HF ViTConfig's default eps is 1e-12 (timm and the original JAX ViT: 1e-6): the report says
    so, and the features still agree within the tolerance."""
    hf = build_hf('vit', layer_norm_eps=1e-12)
    hf.save_pretrained(tmp_path)
    model = vit_trunk('vit_base_patch16_224', img_size=64, out_indices=BLOCKS, checkpoint=str(tmp_path))
    assert 'note: the Hugging Face config has layer_norm_eps=1e-12; the timm model\'s LayerNorms ' \
           'use eps=1e-06' in str(model.load_report)
    x = torch.randn(2, 3, 64, 64)
    assert max(max_diffs(trunk_outputs(model, x).maps, hf_reference(hf, 'vit', x)[0])) <= TOL


def test_hugging_face_classifier_checkpoint(tmp_path):
    """ViTForImageClassification: the ``vit.`` prefix is removed, the classifier reported."""
    transformers = pytest.importorskip('transformers')
    config = transformers.ViTConfig(hidden_size=64, num_hidden_layers=4, num_attention_heads=2,
                                    intermediate_size=256, image_size=64, patch_size=16, num_labels=3)
    randomize(transformers.ViTForImageClassification(config)).save_pretrained(tmp_path)
    model = ViTPyramid('vit_base_patch16_224', img_size=64, depth=4, embed_dim=64, num_heads=2,
                       checkpoint=str(tmp_path))
    report = model.load_report
    (reason, keys), = report.dropped.items()
    assert reason == "outside the ViT (which is under 'vit.')"
    assert sorted(keys) == ['classifier.bias', 'classifier.weight']
    assert not report.missing and not report.unexpected


# ---------------------------------------------------------------------------- mmseg / mmpretrain
def test_mmseg_segmentor_checkpoint_parity(tmp_path):
    """A full mmseg segmentor checkpoint (backbone + decode head + meta); the backbone is an
    mmseg VisionTransformer with its configs' LayerNorm eps (1e-6) and final norm."""
    VisionTransformer = pytest.importorskip('mmseg.models.backbones').VisionTransformer
    vit = randomize(VisionTransformer(img_size=64, patch_size=16, embed_dims=64, num_layers=4,
                                      num_heads=2, out_indices=BLOCKS, final_norm=True,
                                      norm_cfg=dict(type='LN', eps=1e-6)))
    state = {f'backbone.{k}': v for k, v in vit.state_dict().items()}
    state.update({'decode_head.conv_seg.weight': torch.randn(5, 64, 1, 1),
                  'decode_head.conv_seg.bias': torch.randn(5)})
    torch.save({'meta': {'epoch': 3, 'dataset_meta': {'classes': ('a', 'b')}}, 'state_dict': state},
               tmp_path / 'segmentor.pth')
    common = dict(img_size=64, out_indices=BLOCKS, checkpoint=str(tmp_path / 'segmentor.pth'))
    model = vit_trunk('vit_base_patch16_224', **common)
    normed = vit_trunk('vit_base_patch16_224', **common, norm=True)
    report = model.load_report
    assert report.format == 'mmsegmentation VisionTransformer' and report.pos_embed_interp == 'bicubic'
    assert not report.missing and not report.unexpected
    assert report.dropped == {"outside the ViT (which is under 'backbone.')":
                              ['decode_head.conv_seg.weight', 'decode_head.conv_seg.bias']}
    assert report.notes == ["the checkpoint's patch embedding has no bias (mmseg's patch_bias=False): "
                            "patch_embed.proj.bias set to zero"]
    for x in (torch.randn(2, 3, 64, 64), torch.randn(2, 3, 80, 112)):
        with torch.no_grad():
            theirs = vit(x)  # blocks 0-2 raw, block 3 after the final norm
        ours = trunk_outputs(model, x).maps[:3] + trunk_outputs(normed, x).maps[3:]
        assert max(max_diffs(ours, list(theirs))) <= TOL


def test_mmseg_fine_tuning_size_parity(tmp_path):
    """mmseg configs build the ViT at the crop size (here 96) and resize the pretrained (64)
    position embeddings when loading, bicubic without antialias; the trunk built at 96 does the
    same, so both agree at the crop size and at any other."""
    VisionTransformer = pytest.importorskip('mmseg.models.backbones').VisionTransformer
    small = randomize(VisionTransformer(img_size=64, embed_dims=64, num_layers=4, num_heads=2,
                                        norm_cfg=dict(type='LN', eps=1e-6)))
    torch.save(small.state_dict(), tmp_path / 'pretrained.pth')
    vit = VisionTransformer(img_size=96, embed_dims=64, num_layers=4, num_heads=2, out_indices=BLOCKS,
                            norm_cfg=dict(type='LN', eps=1e-6),
                            init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'pretrained.pth')))
    vit.init_weights()
    vit.eval()
    model = vit_trunk('vit_base_patch16_224', img_size=96, out_indices=BLOCKS,
                      checkpoint=str(tmp_path / 'pretrained.pth'))
    assert model.load_report.resized == ['pos_embed']
    for x in (torch.randn(1, 3, 96, 96), torch.randn(1, 3, 80, 128)):
        with torch.no_grad():
            assert max(max_diffs(trunk_outputs(model, x).maps, list(vit(x)))) <= TOL


def test_mmpretrain_parity(tmp_path):
    """mmpretrain VisionTransformer with layer scale, saved as an mmpretrain classifier."""
    mmpretrain_backbones = pytest.importorskip('mmpretrain.models.backbones')
    vit = randomize(mmpretrain_backbones.VisionTransformer(
        arch=dict(embed_dims=64, num_layers=4, num_heads=2, feedforward_channels=256), img_size=64,
        patch_size=16, out_indices=BLOCKS, final_norm=False, out_type='featmap',
        layer_scale_init_value=0.1))
    state = {f'backbone.{k}': v for k, v in vit.state_dict().items()}
    state.update({'head.layers.head.weight': torch.randn(10, 64), 'head.layers.head.bias': torch.randn(10)})
    torch.save({'state_dict': state}, tmp_path / 'classifier.pth')
    model = vit_trunk('vit_base_patch16_224', img_size=64, init_values=1.0, out_indices=BLOCKS,
                      checkpoint=str(tmp_path / 'classifier.pth'))
    report = model.load_report
    assert report.format == 'mmpretrain VisionTransformer (or mmseg BEiT)'
    assert report.missing == ['norm.weight', 'norm.bias'] and not report.unexpected  # final_norm=False
    for x in (torch.randn(2, 3, 64, 64), torch.randn(2, 3, 80, 112)):
        with torch.no_grad():
            theirs = vit(x)
        assert max(max_diffs(trunk_outputs(model, x).maps, list(theirs))) <= TOL


# ---------------------------------------------------------------------------- official DINOv2
def official_dinov2_state_dict(timm_model) -> dict:
    """The facebookresearch layout, with the values of a timm DINOv2 model: position embeddings
    cover the class token; register models keep the class token and its position separately."""
    sd = {k: v.clone() for k, v in timm_model.state_dict().items() if not k.startswith('head')}
    width = sd['cls_token'].shape[-1]
    sd['mask_token'] = torch.zeros(1, width)
    if 'reg_token' in sd:
        cls_pos = torch.randn(1, 1, width) * 0.1
        sd['register_tokens'] = sd.pop('reg_token')
        sd['pos_embed'] = torch.cat([cls_pos, sd['pos_embed']], dim=1)
        sd['cls_token'] = sd['cls_token'] - cls_pos
    return sd


def official_dinov2_blocks(sd: dict, blocks, x: torch.Tensor, offset: float, antialias: bool):
    """What the official ``DinoVisionTransformer`` computes, written from its definition: patch
    embedding, class token, position embeddings (resampled with its rule: bicubic to the scale
    factor (n + offset) / N, or to the size when offset is 0), registers inserted after the class
    token without a position, then the blocks. Returns every block's output tokens."""
    patch = sd['patch_embed.proj.weight'].shape[-1]
    h, w = x.shape[-2] // patch, x.shape[-1] // patch
    tokens = F.conv2d(x, sd['patch_embed.proj.weight'], sd['patch_embed.proj.bias'], stride=patch)
    tokens = torch.cat([sd['cls_token'].expand(x.shape[0], -1, -1), tokens.flatten(2).transpose(1, 2)], 1)
    pos = sd['pos_embed']
    side = math.isqrt(pos.shape[1] - 1)
    if h * w != side * side or h != w:
        grid = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        if offset:
            grid = F.interpolate(grid, scale_factor=((h + offset) / side, (w + offset) / side),
                                 mode='bicubic', antialias=antialias)
        else:
            grid = F.interpolate(grid, size=(h, w), mode='bicubic', antialias=antialias)
        pos = torch.cat([pos[:, :1], grid.flatten(2).transpose(1, 2)], 1)
    tokens = tokens + pos
    if 'register_tokens' in sd:
        regs = sd['register_tokens'].expand(x.shape[0], -1, -1)
        tokens = torch.cat([tokens[:, :1], regs, tokens[:, 1:]], 1)
    outputs = []
    for block in blocks:
        tokens = block(tokens)
        outputs.append(tokens)
    return outputs


@pytest.mark.parametrize('name,registers,rule', [
    ('vit_small_patch14_dinov2', 0, dict(offset=0.1, antialias=False)),  # hub: interpolate_offset=0.1
    ('vit_small_patch14_reg4_dinov2', 4, dict(offset=0.0, antialias=True)),  # hub: 0.0, antialias
])
def test_official_dinov2_parity(tmp_path, name, registers, rule):
    donor = randomize(timm.create_model(name, img_size=56, depth=4, embed_dim=64, num_heads=2))
    sd = official_dinov2_state_dict(donor)
    torch.save(sd, tmp_path / 'dinov2_vits14_pretrain.pth')
    model = vit_trunk(name, img_size=56, out_indices=BLOCKS,
                      checkpoint=str(tmp_path / 'dinov2_vits14_pretrain.pth'))
    report = model.load_report
    assert report.format == ('DINOv2 with registers (facebookresearch)' if registers else 'DINOv2 (facebookresearch)')
    assert report.pos_embed_interp == ('timm' if registers else 'dinov2')
    assert not report.missing and not report.unexpected and not report.resized
    assert report.dropped == {'mask token (masked-image modelling only)': ['mask_token']}
    for x in (torch.randn(2, 3, 56, 56), torch.randn(2, 3, 70, 98)):
        h, w = x.shape[-2] // 14, x.shape[-1] // 14
        with torch.no_grad():
            theirs = official_dinov2_blocks(sd, donor.blocks, x, **rule)
        ours = trunk_outputs(model, x)
        assert max(max_diffs(ours.maps, [as_map(t[:, 1 + registers:], h, w) for t in theirs])) <= TOL
        assert max(max_diffs(ours.class_tokens, [t[:, 0] for t in theirs])) <= TOL
        if registers:
            assert max(max_diffs(ours.register_tokens, [t[:, 1:1 + registers] for t in theirs])) <= TOL
