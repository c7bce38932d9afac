"""Parity with the original implementations: weights from Hugging Face transformers, mmseg,
mmpretrain and the official DINOv2 layout, converted and loaded into ViTPyramid, give the same
patch tokens as the original model, at the stored size and at a size where the position
embeddings are interpolated.

Every original model is built here with random weights (tiny: 4 blocks, width 64) and saved the
way its ecosystem saves it; no weights are downloaded. The comparison runs in float64 on both
sides (see ``REL_TOL``), so that the bound follows from the arithmetic, not from one machine's
float32 rounding.
"""
import contextlib
import math
import re

import pytest
import timm
import torch
import torch.nn.functional as F

from vitadapter import TimmViTTrunk, ViTPyramid

from conftest import rel_error

# Both models and the inputs in float64 (unit roundoff u = 2^-53 = 1.1e-16). A tiny model is 4
# blocks of ~8 operations (LN, qkv, attention, proj, LN, fc1, GELU, fc2), the longest reduction 256
# terms (fc2; attention over <= 40 tokens, LN over 64): summing in another order moves a result by
# at most 2 * 256 * u of the sum of the magnitudes of its terms, which for random weights is
# <= ~16 (sqrt 256) times the result's scale: 4 * 8 * 2 * 256 * 16 * u = 2.9e-11 of the output's
# scale even if every operation passed its error on unamplified. 1e-10 is above that; a tensor
# rounded to float32 on one side only stands far above it (the position embeddings interpolated in
# float64 by HF ViT: 2e-8), and so does one weight off by 2^-20 of itself (5e-10).
# Weights are multiples of 2^-12 (see ``randomize``), so converting them rounds nothing; the
# position embeddings are interpolated in float32 on both sides (see
# ``pos_interpolation_in_float32``), which is why other sizes get ``INTERP_TOL``.
REL_TOL = 1e-10
# At a size other than the checkpoint's, the position embeddings are interpolated in float32 on
# both sides, by two different calls (other kernels, vectorised or not, other thread splits): a
# bicubic value is a 16-term sum, so the two can differ by up to ~2 * 16 float32 roundings
# (2^-24) of the terms' magnitudes, and the 4 blocks may amplify that a few times (factor 4). The
# bound is 2^-24 * 32 * 4 = 7.6e-6 of the features' scale, still 200 times below the difference a
# wrong interpolation rule makes (>= 1.6e-3, test_hugging_face_interpolation_is_followed).
INTERP_TOL = 2.0 ** -24 * 32 * 4
BLOCKS = (0, 1, 2, 3)
GRID = 2.0 ** -12


def on_grid(t: torch.Tensor) -> torch.Tensor:
    """t rounded to a multiple of 2^-12: values below 2^11 have <= 24 significant bits, so the sum
    or difference of two such values is exact in float32 (the class token folded with its position
    embedding when a checkpoint is converted)."""
    return (t / GRID).round() * GRID


def randomize(model: torch.nn.Module) -> torch.nn.Module:
    """Every parameter ~ N(0, 0.1), LayerNorm weights ~ 1 + N(0, 0.1): position embeddings and
    tokens are far from their zero initialisation, so interpolation differences show. Values on
    the 2^-12 grid (``on_grid``): converting a checkpoint rounds nothing."""
    with torch.no_grad():
        for module in model.modules():
            for name, p in module.named_parameters(recurse=False):
                p.normal_(0, 0.1)
                if isinstance(module, torch.nn.LayerNorm) and name == 'weight':
                    p.add_(1)
                p.copy_(on_grid(p))
    model.eval()  # (mmseg's VisionTransformer.train returns None)
    return model


def as_map(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, h*w, C) patch tokens -> (B, C, h, w)."""
    return tokens.reshape(tokens.shape[0], h, w, -1).permute(0, 3, 1, 2)


@contextlib.contextmanager
def pos_interpolation_in_float32():
    """Within the block, ``F.interpolate`` computes in float32 and returns the input's dtype.

    Our trunk, timm, HF ``Dinov2*``, mmpretrain and the official DINOv2 interpolate position
    embeddings in float32 whatever the model's dtype; HF ``ViTModel`` and mmseg interpolate in the
    model's dtype. Run in float64, those two would differ from ours by one float32 rounding of the
    position embeddings (~1e-8 of the features), which says nothing about the rule (kernel,
    antialias, size or scale factor) under test. With float32-exact inputs (weights on the grid)
    and the same float32 call, both sides get the same interpolated values. (Were the patch not
    seen by a source, its float64 interpolation would fail the float64 bound, not pass it.)"""
    original = F.interpolate

    def in_float32(x, *args, **kwargs):
        return original(x.float(), *args, **kwargs).to(x.dtype)

    torch.nn.functional.interpolate = in_float32
    try:
        yield
    finally:
        torch.nn.functional.interpolate = original


def vit_trunk(model_name: str, **kwargs) -> TimmViTTrunk:
    """ViTPyramid's trunk, returning token maps on the patch grid (no stride-16 resampling of
    patch-14 maps), tiny."""
    return TimmViTTrunk(model_name, depth=4, embed_dim=64, num_heads=2, **kwargs).eval()


def trunk_outputs(trunk: TimmViTTrunk, x: torch.Tensor):
    with torch.no_grad():
        return trunk(x)


def tolerance(x: torch.Tensor, native: int) -> float:
    """REL_TOL at the checkpoint's own size (nothing interpolated), INTERP_TOL at any other."""
    return REL_TOL if tuple(x.shape[-2:]) == (native, native) else INTERP_TOL


def images(*sizes, batch=2):
    """float64 random images, one per (height, width)."""
    return [torch.randn(batch, 3, h, w, dtype=torch.float64) for h, w in sizes]


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
    # sdpa: HF's eager attention computes its softmax in float32 even in a float64 model
    config = getattr(transformers, config_cls)(hidden_size=64, num_hidden_layers=4, num_attention_heads=2,
                                               attn_implementation='sdpa', **dict(kwargs, **overrides))
    return randomize(getattr(transformers, model_cls)(config))


def hf_reference(hf, kind: str, x: torch.Tensor):
    """HF's per-layer hidden states -> (maps, class tokens, register tokens, final normed map)."""
    _, _, _, _, patch, registers = HF[kind]
    h, w = x.shape[-2] // patch, x.shape[-1] // patch
    extra = dict(interpolate_pos_encoding=True) if kind == 'vit' else {}
    with torch.no_grad(), pos_interpolation_in_float32():
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
    hf, model, normed = hf.double(), model.double(), normed.double()
    report = model.load_report
    assert not report.missing and not report.unexpected and not report.resized
    if kind == 'vit':
        (reason, keys), = report.dropped.items()
        assert reason == ("HF pooler (dense + tanh, never pretrained; the class token's hidden "
                          "state is the feature)")
        assert sorted(keys) == ['pooler.dense.bias', 'pooler.dense.weight']
        assert 'dropped, HF pooler' in str(report)
    else:  # Dinov2: the mask token, named as HF names it
        assert report.dropped == {'mask token (masked-image modelling only)': ['embeddings.mask_token']}
    expected_interp = 'timm' if registers else 'bicubic'
    assert report.pos_embed_interp == model.pos_embed_interp == expected_interp
    for x in images((size, size), (5 * patch, 7 * patch)):
        maps, cls, regs, last = hf_reference(hf, kind, x)
        ours, tol = trunk_outputs(model, x), tolerance(x, size)
        assert rel_error(ours.maps, maps) <= tol
        assert rel_error(ours.class_tokens, cls) <= tol
        if registers:
            assert rel_error(ours.register_tokens, regs) <= tol
        assert rel_error(trunk_outputs(normed, x).maps[-1:], [last]) <= tol


def transformers5_names(state_dict: dict) -> dict:
    """A 4.x ViTModel / Dinov2 state dict in the names transformers 5 gives it in memory (written
    from transformers 5's modules, independently of vitadapter's renaming); a 5.x one unchanged."""
    blocks = 'layers' if any('layernorm_before' in k for k in state_dict) else 'encoder.layer'  # ViTModel
    rules = [(r'encoder\.layer\.(\d+)\.attention\.attention\.(q|k|v)[a-z]*\.', blocks + r'.\1.attention.\2_proj.'),
             (r'encoder\.layer\.(\d+)\.attention\.output\.dense\.', blocks + r'.\1.attention.o_proj.'),
             (r'encoder\.layer\.(\d+)\.intermediate\.dense\.', r'layers.\1.mlp.fc1.'),
             (r'encoder\.layer\.(\d+)\.output\.dense\.', r'layers.\1.mlp.fc2.'),
             (r'encoder\.layer\.(\d+)\.(layernorm_before|layernorm_after)\.', r'layers.\1.\2.'),
             (r'(encoder\.layer\.\d+\.mlp\.)weights_out\.', r'\1down_proj.')]
    out = {}
    for key, value in state_dict.items():
        swiglu = re.match(r'(encoder\.layer\.\d+\.mlp\.)weights_in\.(weight|bias)$', key)
        if swiglu:  # the gate and up projections, the first half gated
            out[f'{swiglu[1]}gate_proj.{swiglu[2]}'], out[f'{swiglu[1]}up_proj.{swiglu[2]}'] = value.chunk(2)
            continue
        for pattern, replacement in rules:
            key, n = re.subn('^' + pattern, replacement, key)
            if n:
                break
        out[key] = value
    return out


@pytest.mark.parametrize('kind,overrides', [('vit', {}), ('dinov2', {}), ('dinov2_reg', {}),
                                            ('dinov2', dict(use_swiglu_ffn=True))],
                         ids=['vit', 'dinov2', 'dinov2_reg', 'dinov2_swiglu'])
def test_transformers_5_in_memory_names_load_like_saved_ones(tmp_path, kind, overrides):
    """torch.save(model.state_dict()) under transformers 5 keeps its in-memory names
    (layers.N.attention.q_proj, mlp.gate_proj...), save_pretrained the 4.x ones: both load the
    same tensors."""
    hf = build_hf(kind, **overrides)
    hf.save_pretrained(tmp_path / 'hf')
    v5 = transformers5_names(hf.state_dict())
    assert any(re.search(r'\.[qkv]_proj\.', k) for k in v5)
    torch.save(v5, tmp_path / 'v5.pth')
    _, _, kwargs, name, _, _ = HF[kind]
    extra = {}
    if overrides:  # SwiGLU: timm's giant DINOv2, its MLP width from the checkpoint
        name = 'vit_giant_patch14_dinov2'
        extra = dict(mlp_ratio=2 * v5['encoder.layer.0.mlp.down_proj.weight'].shape[1] / 64)
    common = dict(img_size=kwargs['image_size'], out_indices=BLOCKS, **extra)
    saved = vit_trunk(name, **common, checkpoint=str(tmp_path / 'hf'))
    in_memory = vit_trunk(name, **common, checkpoint=str(tmp_path / 'v5.pth'))
    assert in_memory.load_report.format == saved.load_report.format
    assert not in_memory.load_report.missing and not in_memory.load_report.unexpected
    for (key, a), b in zip(saved.state_dict().items(), in_memory.state_dict().values()):
        assert torch.equal(a, b), key


@pytest.mark.parametrize('kind', ['vit', 'dinov2'])
def test_hugging_face_interpolation_is_followed(tmp_path, kind):
    """At an interpolated size, timm's own rule (antialiased bicubic) does not give HF's features:
    the trunk follows the source's rule by default, and pos_embed_interp overrides it."""
    hf = build_hf(kind)
    hf.save_pretrained(tmp_path)
    _, _, kwargs, name, patch, _ = HF[kind]
    x, = images((5 * patch, 7 * patch), batch=1)
    maps, _, _, _ = hf_reference(hf.double(), kind, x)
    timm_rule = vit_trunk(name, img_size=kwargs['image_size'], out_indices=BLOCKS,
                          checkpoint=str(tmp_path), pos_embed_interp='timm').double()
    assert timm_rule.load_report.pos_embed_interp == 'timm'
    # the kernels differ (antialiased a = -0.5 against a = -0.75), a change of order 1e-2 in the
    # position embeddings (measured: 2.5e-3 to 4e-3 of the features): asked to stand 100 times
    # above one float32 rounding (6e-8) and 1e5 times above the float64 bound
    errors = [rel_error([a], [b]) for a, b in zip(trunk_outputs(timm_rule, x).maps, maps)]
    assert min(errors) > 1e-5, errors


def test_hugging_face_vit_layer_norm_eps_is_noted(tmp_path):
    """HF ViTConfig's default eps is 1e-12 (timm and the original JAX ViT: 1e-6): the report says
    so; the eps is the only difference, and a small one."""
    hf = build_hf('vit', layer_norm_eps=1e-12)
    hf.save_pretrained(tmp_path)
    model = vit_trunk('vit_base_patch16_224', img_size=64, out_indices=BLOCKS, checkpoint=str(tmp_path))
    assert 'note: the Hugging Face config has layer_norm_eps=1e-12; the timm model\'s LayerNorms ' \
           'use eps=1e-06' in str(model.load_report)
    model, hf = model.double(), hf.double()
    x, = images((64, 64))
    ours = trunk_outputs(model, x).maps
    variances = []
    hooks = [m.register_forward_pre_hook(lambda m, args: variances.append(float(args[0].var(-1).min())))
             for m in hf.modules() if isinstance(m, torch.nn.LayerNorm)]
    eps_error = rel_error(ours, hf_reference(hf, 'vit', x)[0])
    for hook in hooks:
        hook.remove()
    # with HF's LayerNorms given timm's eps, the features are the same (float64 bound)
    for m in hf.modules():
        if isinstance(m, torch.nn.LayerNorm):
            m.eps = 1e-6
    assert rel_error(ours, hf_reference(hf, 'vit', x)[0]) <= REL_TOL
    # the eps itself: each LayerNorm divides by sqrt(var + eps), so eps moves its output by at most
    # (1e-6 - 1e-12) / (2 var) relatively; over the 9 LayerNorms HF runs (2 per block, the final
    # one), and allowing each block to amplify what it is given 10 times (a generous Lipschitz
    # factor for these weights), the features move by at most 10 * 9 * 5e-7 / min(var), var the
    # smallest token variance a LayerNorm sees (measured: 3e-6 against a bound of 3e-3)
    assert len(variances) == 9
    assert eps_error <= 10 * 9 * 5e-7 / min(variances), (eps_error, min(variances))


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
    vit, model, normed = vit.double(), model.double(), normed.double()
    report = model.load_report
    assert report.format == 'mmsegmentation VisionTransformer' and report.pos_embed_interp == 'bicubic'
    assert not report.missing and not report.unexpected
    assert report.dropped == {"outside the ViT (which is under 'backbone.')":
                              ['decode_head.conv_seg.weight', 'decode_head.conv_seg.bias']}
    assert report.notes == ["the checkpoint's patch embedding has no bias (mmseg's patch_bias=False): "
                            "patch_embed.proj.bias set to zero"]
    for x in images((64, 64), (80, 112)):
        with torch.no_grad(), pos_interpolation_in_float32():
            theirs = vit(x)  # blocks 0-2 raw, block 3 after the final norm
        ours = trunk_outputs(model, x).maps[:3] + trunk_outputs(normed, x).maps[3:]
        assert rel_error(ours, list(theirs)) <= tolerance(x, 64)


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
    vit.init_weights()  # resizes the position embeddings in float32, as the trunk does
    vit.eval()
    model = vit_trunk('vit_base_patch16_224', img_size=96, out_indices=BLOCKS,
                      checkpoint=str(tmp_path / 'pretrained.pth'))
    assert model.load_report.resized == ['pos_embed']
    vit, model = vit.double(), model.double()
    for x in images((96, 96), (80, 128), batch=1):  # both resized their 64-px embeddings: INTERP_TOL
        with torch.no_grad(), pos_interpolation_in_float32():
            assert rel_error(trunk_outputs(model, x).maps, list(vit(x))) <= INTERP_TOL


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
    vit, model = vit.double(), model.double()
    for x in images((64, 64), (80, 112)):
        with torch.no_grad():
            theirs = vit(x)  # (mmpretrain interpolates in float32 itself)
        assert rel_error(trunk_outputs(model, x).maps, list(theirs)) <= tolerance(x, 64)


# ---------------------------------------------------------------------------- official DINOv2
def official_dinov2_state_dict(timm_model) -> dict:
    """The facebookresearch layout, with the values of a timm DINOv2 model: position embeddings
    cover the class token; register models keep the class token and its position separately."""
    sd = {k: v.clone() for k, v in timm_model.state_dict().items() if not k.startswith('head')}
    width = sd['cls_token'].shape[-1]
    sd['mask_token'] = torch.zeros(1, width)
    if 'reg_token' in sd:
        cls_pos = on_grid(torch.randn(1, 1, width) * 0.1)  # cls_token - cls_pos exact in float32
        sd['register_tokens'] = sd.pop('reg_token')
        sd['pos_embed'] = torch.cat([cls_pos, sd['pos_embed']], dim=1)
        sd['cls_token'] = sd['cls_token'] - cls_pos
    return sd


def official_dinov2_blocks(sd: dict, blocks, x: torch.Tensor, offset: float, antialias: bool):
    """What the official ``DinoVisionTransformer`` computes, written from its definition: patch
    embedding, class token, position embeddings (resampled in float32 with its rule: bicubic to the
    scale factor (n + offset) / N, or to the size when offset is 0), registers inserted after the
    class token without a position, then the blocks. Returns every block's output tokens."""
    patch = sd['patch_embed.proj.weight'].shape[-1]
    h, w = x.shape[-2] // patch, x.shape[-1] // patch
    tokens = F.conv2d(x, sd['patch_embed.proj.weight'], sd['patch_embed.proj.bias'], stride=patch)
    tokens = torch.cat([sd['cls_token'].expand(x.shape[0], -1, -1), tokens.flatten(2).transpose(1, 2)], 1)
    pos = sd['pos_embed']
    side = math.isqrt(pos.shape[1] - 1)
    if h * w != side * side or h != w:
        grid = pos[:, 1:].float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
        if offset:
            grid = F.interpolate(grid, scale_factor=((h + offset) / side, (w + offset) / side),
                                 mode='bicubic', antialias=antialias)
        else:
            grid = F.interpolate(grid, size=(h, w), mode='bicubic', antialias=antialias)
        pos = torch.cat([pos[:, :1], grid.flatten(2).transpose(1, 2).to(pos.dtype)], 1)
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
    sd = {k: v.double() for k, v in sd.items()}
    donor, model = donor.double(), model.double()
    for x in images((56, 56), (70, 98)):
        h, w = x.shape[-2] // 14, x.shape[-1] // 14
        with torch.no_grad():
            theirs = official_dinov2_blocks(sd, donor.blocks, x, **rule)
        ours, tol = trunk_outputs(model, x), tolerance(x, 56)
        assert rel_error(ours.maps, [as_map(t[:, 1 + registers:], h, w) for t in theirs]) <= tol
        assert rel_error(ours.class_tokens, [t[:, 0] for t in theirs]) <= tol
        if registers:
            assert rel_error(ours.register_tokens, [t[:, 1:1 + registers] for t in theirs]) <= tol
