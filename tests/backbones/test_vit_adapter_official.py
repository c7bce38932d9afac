"""Official ViT-Adapter checkpoints: key layout, conversion, and the same features as the official
forward pass.

The official checkpoints cannot be downloaded here, so this file rebuilds what they hold from the
official code's module structure (czczup/ViT-Adapter, segmentation/mmseg_custom/models/backbones:
vit_adapter.py, adapter_modules.py, base/vit.py, base/beit.py; mmseg 0.x UPerHead/FCNHead): every
key and shape of a ``ViTAdapter``/``BEiTAdapter`` UperNet segmentor, filled with random values.
``official_forward`` below recomputes the official backbone's forward pass directly from such a
state dict with plain torch functions (its own attention, bilinear sampling by hand, the official
``deform_inputs`` and ``DWConv`` splitting), sharing no code with vitadapter.
"""
import math
import os
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vitadapter import CheckpointError, ViTAdapter
from vitadapter.backbones import (OFFICIAL_CONFIGS, convert_official_file, convert_vit_adapter_official,
                                  describe_official, is_official_vit_adapter, read_official_checkpoint)
from vitadapter.convert import main as convert_main

from conftest import rel_error, requires_mmseg, ROOT



# ----------------------------------------------------------------------------- official layout
def bn(prefix, c):
    return {f'{prefix}.weight': (c,), f'{prefix}.bias': (c,), f'{prefix}.running_mean': (c,),
            f'{prefix}.running_var': (c,), f'{prefix}.num_batches_tracked': ()}


def linear(prefix, out, inp, bias=True):
    return {f'{prefix}.weight': (out, inp), **({f'{prefix}.bias': (out,)} if bias else {})}


def ln(prefix, c):
    return {f'{prefix}.weight': (c,), f'{prefix}.bias': (c,)}


def msdeform(prefix, dim, heads, levels, points, ratio):
    v = int(dim * ratio)
    return {**linear(f'{prefix}.sampling_offsets', heads * levels * points * 2, dim),
            **linear(f'{prefix}.attention_weights', heads * levels * points, dim),
            **linear(f'{prefix}.value_proj', v, dim), **linear(f'{prefix}.output_proj', dim, v)}


def official_adapter_shapes(dim, heads, points=4, ratio=1.0, cffn_ratio=0.25, inplanes=64,
                            interactions=4, extra=True, with_cffn=True):
    """The adapter part of the official ViTAdapter/BEiTAdapter (level_embed, spm, interactions,
    up, norm1-4), keys without 'backbone.'."""
    s = {'level_embed': (3, dim)}
    stem = [(0, 3, inplanes), (3, inplanes, inplanes), (6, inplanes, inplanes)]
    for i, cin, cout in stem:
        s[f'spm.stem.{i}.weight'] = (cout, cin, 3, 3)
        s.update(bn(f'spm.stem.{i + 1}', cout))
    for name, cin, cout in (('conv2', inplanes, 2 * inplanes), ('conv3', 2 * inplanes, 4 * inplanes),
                            ('conv4', 4 * inplanes, 4 * inplanes)):
        s[f'spm.{name}.0.weight'] = (cout, cin, 3, 3)
        s.update(bn(f'spm.{name}.1', cout))
    for i, cin in enumerate((inplanes, 2 * inplanes, 4 * inplanes, 4 * inplanes), 1):
        s[f'spm.fc{i}.weight'] = (dim, cin, 1, 1)
        s[f'spm.fc{i}.bias'] = (dim,)
    hidden = int(dim * cffn_ratio)

    def extractor(p):
        e = {**ln(f'{p}.query_norm', dim), **ln(f'{p}.feat_norm', dim),
             **msdeform(f'{p}.attn', dim, heads, 1, points, ratio)}
        if with_cffn:
            e.update({**linear(f'{p}.ffn.fc1', hidden, dim), f'{p}.ffn.dwconv.dwconv.weight': (hidden, 1, 3, 3),
                      f'{p}.ffn.dwconv.dwconv.bias': (hidden,), **linear(f'{p}.ffn.fc2', dim, hidden),
                      **ln(f'{p}.ffn_norm', dim)})
        return e

    for i in range(interactions):
        p = f'interactions.{i}'
        s.update({**ln(f'{p}.injector.query_norm', dim), **ln(f'{p}.injector.feat_norm', dim),
                  **msdeform(f'{p}.injector.attn', dim, heads, 3, points, ratio),
                  f'{p}.injector.gamma': (dim,), **extractor(f'{p}.extractor')})
        if extra and i == interactions - 1:
            for j in range(2):
                s.update(extractor(f'{p}.extra_extractors.{j}'))
    s.update({'up.weight': (dim, dim, 2, 2), 'up.bias': (dim,)})
    for i in range(1, 5):
        s.update(bn(f'norm{i}', dim))
    return s


def official_vit_shapes(dim, depth, pos_grid, patch=16, mlp_ratio=4, layer_scale=True):
    """base/vit.py TIMMVisionTransformer as ViTAdapter uses it (no cls_token, no final norm)."""
    s = {'patch_embed.proj.weight': (dim, 3, patch, patch), 'patch_embed.proj.bias': (dim,),
         'pos_embed': (1, pos_grid ** 2 + 1, dim)}
    for i in range(depth):
        b = f'blocks.{i}'
        s.update({**ln(f'{b}.norm1', dim), **linear(f'{b}.attn.qkv', 3 * dim, dim),
                  **linear(f'{b}.attn.proj', dim, dim), **ln(f'{b}.norm2', dim),
                  **linear(f'{b}.mlp.fc1', dim * mlp_ratio, dim), **linear(f'{b}.mlp.fc2', dim, dim * mlp_ratio)})
        if layer_scale:
            s.update({f'{b}.gamma1': (dim,), f'{b}.gamma2': (dim,)})
    return s


def official_beit_shapes(dim, depth, heads, grid, patch=16, mlp_ratio=4):
    """base/beit.py BEiT as BEiTAdapter-L uses it (per-block relative position bias, no abs pos)."""
    table = (2 * grid - 1) ** 2 + 3
    s = {'cls_token': (1, 1, dim), 'patch_embed.proj.weight': (dim, 3, patch, patch),
         'patch_embed.proj.bias': (dim,)}
    for i in range(depth):
        b = f'blocks.{i}'
        s.update({f'{b}.gamma_1': (dim,), f'{b}.gamma_2': (dim,), **ln(f'{b}.norm1', dim),
                  f'{b}.attn.q_bias': (dim,), f'{b}.attn.v_bias': (dim,),
                  f'{b}.attn.relative_position_bias_table': (table, heads),
                  f'{b}.attn.relative_position_index': (grid * grid + 1, grid * grid + 1),
                  **linear(f'{b}.attn.qkv', 3 * dim, dim, bias=False), **linear(f'{b}.attn.proj', dim, dim),
                  **ln(f'{b}.norm2', dim), **linear(f'{b}.mlp.fc1', dim * mlp_ratio, dim),
                  **linear(f'{b}.mlp.fc2', dim, dim * mlp_ratio)})
    return s


def conv_module(prefix, cout, cin, k):
    return {f'{prefix}.conv.weight': (cout, cin, k, k), **bn(f'{prefix}.bn', cout)}


def official_heads_shapes(dim, channels=16, aux_channels=8, num_classes=5):
    """mmseg 0.x UPerHead (pool scales 1, 2, 3, 6) and FCNHead (1 conv) on 4 levels of ``dim``."""
    s = {}
    for i in range(4):
        s.update(conv_module(f'decode_head.psp_modules.{i}.1', channels, dim, 1))
    s.update(conv_module('decode_head.bottleneck', channels, dim + 4 * channels, 3))
    for i in range(3):
        s.update(conv_module(f'decode_head.lateral_convs.{i}', channels, dim, 1))
        s.update(conv_module(f'decode_head.fpn_convs.{i}', channels, channels, 3))
    s.update(conv_module('decode_head.fpn_bottleneck', channels, 4 * channels, 3))
    s.update({'decode_head.conv_seg.weight': (num_classes, channels, 1, 1), 'decode_head.conv_seg.bias': (num_classes,)})
    s.update(conv_module('auxiliary_head.convs.0', aux_channels, dim, 3))
    s.update({'auxiliary_head.conv_seg.weight': (num_classes, aux_channels, 1, 1),
              'auxiliary_head.conv_seg.bias': (num_classes,)})
    return s


def random_state(shapes, seed=0):
    """Random values with sane statistics: norms near 1, variances positive, offsets spread."""
    g = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for key, shape in shapes.items():
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(100)
        elif key.endswith('relative_position_index'):
            state[key] = torch.randint(0, 10, shape, generator=g)
        elif key.endswith('running_var'):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith(('gamma', 'gamma1', 'gamma2', 'gamma_1', 'gamma_2')):
            state[key] = torch.rand(shape, generator=g) * 0.5 + 0.25
        elif ('norm' in key or '.stem.1' in key or '.bn.' in key) and key.endswith('.weight') and len(shape) == 1:
            state[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        elif key.endswith('sampling_offsets.bias'):
            state[key] = 2 * torch.randn(shape, generator=g)  # some samples fall outside the maps
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            state[key] = torch.randn(shape, generator=g) / math.sqrt(max(fan_in, 1)) * (0.5 if len(shape) > 1 else 0.1)
    return state


def prefixed(shapes, prefix='backbone.'):
    return {prefix + k: v for k, v in shapes.items()}


# ----------------------------------------------------------------------------- official forward
def bilinear_by_hand(value, x, y):
    """value (N, d, h, w); x, y (N, Q, P) pixel coordinates -> (N, d, Q, P), zeros outside."""
    n, d, h, w = value.shape
    x0, y0 = x.floor(), y.floor()
    out = value.new_zeros(n, d, *x.shape[1:])
    flat = value.flatten(2)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        xi, yi = x0 + dx, y0 + dy
        wgt = (1 - (x - xi).abs()) * (1 - (y - yi).abs())
        valid = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        index = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).long().flatten(1)
        picked = torch.gather(flat, 2, index[:, None].expand(n, d, index.shape[1])).view(n, d, *x.shape[1:])
        out += picked * (wgt * valid)[:, None]
    return out


def deform_attn_by_hand(p, pre, query, ref, feat, shapes, heads, points):
    """Official MSDeformAttn: ref (1, Lq, 1, 2) in [0, 1]; shapes [(h, w)] of the levels of feat."""
    b, lq, _ = query.shape
    levels = len(shapes)
    value = F.linear(feat, p[pre + 'value_proj.weight'], p[pre + 'value_proj.bias'])
    dh = value.shape[-1] // heads
    off = F.linear(query, p[pre + 'sampling_offsets.weight'], p[pre + 'sampling_offsets.bias'])
    off = off.view(b, lq, heads, levels, points, 2)
    aw = F.linear(query, p[pre + 'attention_weights.weight'], p[pre + 'attention_weights.bias'])
    aw = aw.view(b, lq, heads, levels * points).softmax(-1).view(b, lq, heads, levels, points)
    out = 0
    start = 0
    for lvl, (h, w) in enumerate(shapes):
        v = value[:, start:start + h * w].view(b, h, w, heads, dh).permute(0, 3, 4, 1, 2).reshape(b * heads, dh, h, w)
        start += h * w
        loc = ref[:, :, None, 0, None, :] + off[:, :, :, lvl] / torch.tensor([w, h], dtype=off.dtype)
        loc = loc.permute(0, 2, 1, 3, 4).reshape(b * heads, lq, points, 2)
        sampled = bilinear_by_hand(v, loc[..., 0] * w - 0.5, loc[..., 1] * h - 0.5)  # (bH, dh, lq, P)
        wts = aw[:, :, :, lvl].permute(0, 2, 1, 3).reshape(b * heads, 1, lq, points)
        out = out + (sampled * wts).sum(-1)
    out = out.view(b, heads * dh, lq).transpose(1, 2)
    return F.linear(out, p[pre + 'output_proj.weight'], p[pre + 'output_proj.bias'])


def layer_norm(p, pre, x):
    return F.layer_norm(x, x.shape[-1:], p[pre + '.weight'], p[pre + '.bias'], eps=1e-6)


def batch_norm(p, pre, x):
    return F.batch_norm(x, p[pre + '.running_mean'], p[pre + '.running_var'], p[pre + '.weight'],
                        p[pre + '.bias'], training=False, eps=1e-5)


def vit_block(p, pre, x, heads):
    b, n, c = x.shape
    h = layer_norm(p, pre + 'norm1', x)
    qkv = F.linear(h, p[pre + 'attn.qkv.weight'], p[pre + 'attn.qkv.bias'])
    q, k, v = qkv.reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    attn = ((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5).softmax(-1)
    a = F.linear((attn @ v).transpose(1, 2).reshape(b, n, c), p[pre + 'attn.proj.weight'], p[pre + 'attn.proj.bias'])
    x = x + p[pre + 'gamma1'] * a
    h = layer_norm(p, pre + 'norm2', x)
    h = F.linear(F.gelu(F.linear(h, p[pre + 'mlp.fc1.weight'], p[pre + 'mlp.fc1.bias'])),
                 p[pre + 'mlp.fc2.weight'], p[pre + 'mlp.fc2.bias'])
    return x + p[pre + 'gamma2'] * h


def spm_forward(p, x):
    def cbr(x, conv, norm, stride):
        return F.relu(batch_norm(p, norm, F.conv2d(x, p[conv + '.weight'], stride=stride, padding=1)))
    c1 = cbr(cbr(cbr(x, 'spm.stem.0', 'spm.stem.1', 2), 'spm.stem.3', 'spm.stem.4', 1), 'spm.stem.6', 'spm.stem.7', 1)
    c1 = F.max_pool2d(c1, 3, 2, 1)
    c2 = cbr(c1, 'spm.conv2.0', 'spm.conv2.1', 2)
    c3 = cbr(c2, 'spm.conv3.0', 'spm.conv3.1', 2)
    c4 = cbr(c3, 'spm.conv4.0', 'spm.conv4.1', 2)
    return [F.conv2d(c, p[f'spm.fc{i}.weight'], p[f'spm.fc{i}.bias']) for i, c in enumerate((c1, c2, c3, c4), 1)]


def official_reference_points(shapes):
    refs = []
    for h, w in shapes:
        ry, rx = torch.meshgrid(torch.linspace(0.5, h - 0.5, h), torch.linspace(0.5, w - 0.5, w), indexing='ij')
        refs.append(torch.stack((rx.reshape(-1)[None] / w, ry.reshape(-1)[None] / h), -1))
    return torch.cat(refs, 1)[:, :, None]


def extractor_forward(p, pre, c, x, H, W, deform_heads, points):
    q = layer_norm(p, pre + 'query_norm', c)
    ref = official_reference_points([(H * 2, W * 2), (H, W), (H // 2, W // 2)])
    c = c + deform_attn_by_hand(p, pre + 'attn.', q, ref, layer_norm(p, pre + 'feat_norm', x), [(H, W)],
                                deform_heads, points)
    h = F.linear(layer_norm(p, pre + 'ffn_norm', c), p[pre + 'ffn.fc1.weight'], p[pre + 'ffn.fc1.bias'])
    b, n, ch = h.shape
    k = n // 21  # the official DWConv split: 16 n tokens at 2H x 2W, 4 n at H x W, n at H/2 x W/2
    parts = [(h[:, :16 * k], H * 2, W * 2), (h[:, 16 * k:20 * k], H, W), (h[:, 20 * k:], H // 2, W // 2)]
    h = torch.cat([F.conv2d(t.transpose(1, 2).reshape(b, ch, hh, ww), p[pre + 'ffn.dwconv.dwconv.weight'],
                            p[pre + 'ffn.dwconv.dwconv.bias'], padding=1, groups=ch).flatten(2).transpose(1, 2)
                   for t, hh, ww in parts], 1)
    h = F.linear(F.gelu(h), p[pre + 'ffn.fc2.weight'], p[pre + 'ffn.fc2.bias'])
    return c + h


def official_forward(state, image, vit_heads, deform_heads, interactions, points=4, pos_grid=4):
    """The official ViTAdapter.forward (eval) on an image whose sides are multiples of 32."""
    p = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    bs, _, h_img, w_img = image.shape
    H, W = h_img // 16, w_img // 16
    c1, c2, c3, c4 = spm_forward(p, image)
    dim = c1.shape[1]
    c = torch.cat([m.flatten(2).transpose(1, 2) + p['level_embed'][i] for i, m in enumerate((c2, c3, c4))], 1)
    x = F.conv2d(image, p['patch_embed.proj.weight'], p['patch_embed.proj.bias'], stride=16).flatten(2).transpose(1, 2)
    pos = p['pos_embed'][:, 1:].reshape(1, pos_grid, pos_grid, -1).permute(0, 3, 1, 2)
    # in float32, as vitadapter (and timm) always do; the official code interpolates in the model's
    # dtype, the same thing in the float32 it ran in (a float64 run would differ by one float32
    # rounding of the position embeddings, 5e-9 of the features)
    pos = F.interpolate(pos.float(), size=(H, W), mode='bicubic', align_corners=False).to(pos.dtype)
    x = x + pos.reshape(1, -1, H * W).permute(0, 2, 1)
    inject_ref = official_reference_points([(H, W)])
    prior_shapes = [(h_img // 8, w_img // 8), (H, W), (h_img // 32, w_img // 32)]
    outs = []
    for i, (first, last) in enumerate(interactions):
        pre = f'interactions.{i}.'
        q = layer_norm(p, pre + 'injector.query_norm', x)
        attn = deform_attn_by_hand(p, pre + 'injector.attn.', q, inject_ref,
                                   layer_norm(p, pre + 'injector.feat_norm', c), prior_shapes, deform_heads, points)
        x = x + p[pre + 'injector.gamma'] * attn
        for j in range(first, last + 1):
            x = vit_block(p, f'blocks.{j}.', x, vit_heads)
        extractors = [pre + 'extractor.'] + [f'{pre}extra_extractors.{j}.' for j in range(2)
                                             if f'{pre}extra_extractors.{j}.ffn.fc1.weight' in p]
        for e in extractors:
            c = extractor_forward(p, e, c, x, H, W, deform_heads, points)
        outs.append(x.transpose(1, 2).reshape(bs, dim, H, W))
    n2, n3 = c2.shape[2] * c2.shape[3], c3.shape[2] * c3.shape[3]
    c2 = c[:, :n2].transpose(1, 2).reshape(bs, dim, H * 2, W * 2)
    c3 = c[:, n2:n2 + n3].transpose(1, 2).reshape(bs, dim, H, W)
    c4 = c[:, n2 + n3:].transpose(1, 2).reshape(bs, dim, H // 2, W // 2)
    c1 = F.conv_transpose2d(c2, p['up.weight'], p['up.bias'], stride=2) + c1
    x1, x2, x3, x4 = outs
    c1 = c1 + F.interpolate(x1, scale_factor=4, mode='bilinear', align_corners=False)
    c2 = c2 + F.interpolate(x2, scale_factor=2, mode='bilinear', align_corners=False)
    c3 = c3 + x3
    c4 = c4 + F.interpolate(x4, scale_factor=0.5, mode='bilinear', align_corners=False)
    return [batch_norm(p, f'norm{i}', m) for i, m in enumerate((c1, c2, c3, c4), 1)]


# ----------------------------------------------------------------------------- tests
DIM, DEPTH, VIT_HEADS, DEFORM_HEADS, POS_GRID = 64, 4, 2, 4, 4
INTERACTIONS = [(0, 0), (1, 1), (2, 2), (3, 3)]
# Ours and the official forward both run in float64 (unit roundoff u = 2^-53 = 1.1e-16), from the
# same float32-exact weights. A feature goes through ~85 operations (5 SPM convolutions; per
# interaction an injector, a block of ~8 operations, up to 3 extractors of ~6), the longest
# reduction 2304 terms (conv4: 256 channels x 3 x 3). Summing in another order moves a result by at
# most 2 * n * u of the sum of its terms' magnitudes, <= ~sqrt(n) = 48 times its scale for random
# weights: 85 * 2 * 2304 * 48 * u = 2.1e-9 of the features' scale if every operation passed its
# error on unamplified; 1e-8 is above that, and far below any real difference (a position
# embedding resized with another rule: 1e-3).
REL_TOL = 1e-8
# At a size other than the stored 4x4 grid the position embeddings are interpolated in float32 on
# both sides, by two different calls (other kernels, vectorised or not, other thread splits): a
# bicubic value is a 16-term sum, so the two can differ by up to ~2 * 16 float32 roundings
# (2^-24) of the terms' magnitudes, and the blocks may amplify that a few times (factor 4):
# 2^-24 * 32 * 4 = 7.6e-6 of the features' scale, still 100 times below what another rule gives.
INTERP_TOL = 2.0 ** -24 * 32 * 4


def float64_state(state):
    """The floating tensors of a state dict in float64 (exact: they are float32 values)."""
    return OrderedDict((k, v.double() if v.is_floating_point() else v) for k, v in state.items())


def tiny_official_model(ratio=1.0, **kw):
    """ViTAdapter with the official ViT's structure (DeiT + layer scale), shrunk."""
    return ViTAdapter(model_name='deit_small_patch16_224', img_size=16 * POS_GRID, depth=DEPTH,
                      embed_dim=DIM, num_heads=VIT_HEADS, init_values=1.0, deform_num_heads=DEFORM_HEADS,
                      deform_ratio=ratio, interaction_indexes=INTERACTIONS, **kw)


def official_state(ratio=1.0, seed=0):
    return random_state(prefixed({**official_vit_shapes(DIM, DEPTH, POS_GRID),
                                  **official_adapter_shapes(DIM, DEFORM_HEADS, ratio=ratio)}), seed)


@pytest.mark.parametrize('ratio', [1.0, 0.5])
def test_official_layout_loads_without_missing_or_unexpected_keys(ratio):
    model = tiny_official_model(ratio)
    converted = convert_vit_adapter_official({'state_dict': official_state(ratio)})
    backbone = {k[len('backbone.'):]: v for k, v in converted.items()}
    result = model.load_state_dict(backbone, strict=False)
    assert not result.missing_keys and not result.unexpected_keys
    assert set(backbone) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(value, backbone[key]), key


@pytest.mark.parametrize('size', [(64, 64), (96, 128)])
def test_same_features_as_the_official_forward(size):
    """Random official weights, converted: our features equal the official computation."""
    state = official_state(seed=1)
    model = tiny_official_model().eval()
    model.load_state_dict({k[9:]: v for k, v in convert_vit_adapter_official(state).items()})
    model.double()
    image = torch.randn(2, 3, *size, dtype=torch.float64)
    with torch.no_grad():
        ours = model(image)
        theirs = official_forward(float64_state(state), image, VIT_HEADS, DEFORM_HEADS, INTERACTIONS,
                                  pos_grid=POS_GRID)
    tol = REL_TOL if size == (16 * POS_GRID, 16 * POS_GRID) else INTERP_TOL
    for level, (a, b) in enumerate(zip(ours, theirs)):
        assert b.abs().mean() > 0.1  # a real signal, not zeros
        assert rel_error(a, b) <= tol, f'level {level}: relative error {rel_error(a, b)}'


def test_timm_antialiased_position_embedding_would_differ():
    """Why ViTAdapter resizes position embeddings with plain bicubic by default: timm's antialiased
    resizing (another kernel) moves the features by ~1e-3 of their scale, two orders of magnitude
    above the bound the plain bicubic rule meets at an interpolated size (INTERP_TOL)."""
    state = official_state(seed=1)
    converted = {k[9:]: v for k, v in convert_vit_adapter_official(state).items()}
    image = torch.randn(1, 3, 64, 96, dtype=torch.float64)  # 4x6 patches from the stored 4x4 grid
    with torch.no_grad():
        theirs = official_forward(float64_state(state), image, VIT_HEADS, DEFORM_HEADS, INTERACTIONS,
                                  pos_grid=POS_GRID)[2]
        errors = []
        for rule in ('bicubic', 'timm'):
            model = tiny_official_model(pos_embed_interp=rule).eval()
            model.load_state_dict(converted)
            errors.append(rel_error(model.double()(image)[2], theirs))
    assert errors[0] <= INTERP_TOL and errors[1] > 100 * INTERP_TOL, errors


def test_describe_official_reads_the_architecture():
    assert is_official_vit_adapter({'state_dict': official_state()})
    assert not is_official_vit_adapter({'state_dict': random_state(prefixed(official_vit_shapes(DIM, 1, 2)))})
    info = describe_official(official_state(ratio=0.5))
    assert info == dict(embed_dim=DIM, depth=DEPTH, interactions=4, deform_ratio=0.5, extra_extractors=2,
                        with_cffn=True, pos_embed_grid=POS_GRID, layer_scale=True, beit=False)


def test_unknown_keys_are_refused_with_their_names():
    state = official_state()
    state['backbone.blocks.0.attn.q_norm.weight'] = torch.ones(DIM)
    state['neck.fpn.0.weight'] = torch.ones(1)
    with pytest.raises(CheckpointError, match=r'2 keys .*blocks\.\*\.attn\.q_norm\.weight.*neck\.fpn'):
        convert_vit_adapter_official(state)
    with pytest.raises(CheckpointError, match="expected a 'state_dict' with 'backbone"):
        convert_vit_adapter_official({'model': {'head.weight': torch.ones(1)}})


def test_beit_adapter_layout_loads_into_a_timm_beit_trunk():
    """BEiT-Adapter-L's layout (class token through the blocks, per-block relative position bias)
    shrunk: 64 px images at patch 16 -> a 4x4 grid."""
    grid = 4
    shapes = prefixed({**official_beit_shapes(DIM, DEPTH, VIT_HEADS, grid),
                       **official_adapter_shapes(DIM, DEFORM_HEADS, ratio=0.5)})
    converted = convert_vit_adapter_official(random_state(shapes))
    model = ViTAdapter(model_name='beit_large_patch16_224', img_size=16 * grid, depth=DEPTH, embed_dim=DIM,
                       num_heads=VIT_HEADS, with_cls_token=True, injector_init_values=1e-6,
                       deform_num_heads=DEFORM_HEADS, deform_ratio=0.5, interaction_indexes=INTERACTIONS)
    backbone = {k[9:]: v for k, v in converted.items()}
    result = model.load_state_dict(backbone, strict=False)
    assert not result.missing_keys and not result.unexpected_keys
    assert all(torch.equal(v, backbone[k]) for k, v in model.state_dict().items())
    with torch.no_grad():
        levels = model.eval()(torch.randn(1, 3, 64, 64))
    assert [tuple(y.shape[-2:]) for y in levels] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    with pytest.raises(ValueError, match='BEiT.*needs its class token'):
        ViTAdapter(model_name='beit_large_patch16_224', img_size=64, depth=1, embed_dim=DIM, num_heads=2,
                   deform_num_heads=4, interaction_indexes=[(0, 0)], add_vit_feature=False)


@requires_mmseg
def test_converted_file_loads_into_the_tiny_official_config(tmp_path):
    """File -> convert_official_file -> mmseg 1.x EncoderDecoder built from our config: every key
    fits, nothing missing or unexpected; classes carried into dataset_meta."""
    shapes = prefixed({**official_vit_shapes(DIM, DEPTH, POS_GRID), **official_adapter_shapes(DIM, DEFORM_HEADS)})
    shapes.update(official_heads_shapes(DIM))
    state = random_state(shapes)
    meta = dict(CLASSES=('wall', 'sky', 'floor', 'tree', 'road'), PALETTE=[[1, 2, 3]] * 5,
                hook_msgs=dict(best_score=np.float64(0.5)), iter=160000)
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    torch.save(dict(meta=meta, state_dict=state), src)
    assert read_official_checkpoint(str(src))['meta']['hook_msgs']['best_score'] == 0.5
    summary = convert_official_file(str(src), str(dst))
    assert summary['tensors'] == len(state) and summary['embed_dim'] == DIM

    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(os.path.join(ROOT, OFFICIAL_CONFIGS['upernet_deit_adapter_small_512_160k_ade20k.pth']))
    cfg.model.backbone.update(img_size=16 * POS_GRID, depth=DEPTH, embed_dim=DIM, num_heads=VIT_HEADS,
                              deform_num_heads=DEFORM_HEADS, interaction_indexes=INTERACTIONS)
    cfg.model.decode_head.update(in_channels=[DIM] * 4, channels=16, num_classes=5)
    cfg.model.auxiliary_head.update(in_channels=DIM, channels=8, num_classes=5)
    segmentor = MODELS.build(cfg.model)
    saved = torch.load(dst, weights_only=True)
    assert saved['meta']['dataset_meta']['classes'][1] == 'sky'
    result = segmentor.load_state_dict(saved['state_dict'], strict=False)
    assert not result.missing_keys and not result.unexpected_keys
    assert all(torch.equal(v, saved['state_dict'][k]) for k, v in segmentor.state_dict().items())
    segmentor.eval()
    with torch.no_grad():
        logits = segmentor(torch.randn(1, 3, 64, 64), mode='tensor')
    assert logits.shape == (1, 5, 16, 16)


def test_official_configs_exist():
    for config in OFFICIAL_CONFIGS.values():
        assert os.path.isfile(os.path.join(ROOT, config)), config


def test_convert_command_recognises_official_checkpoints(tmp_path, capsys):
    """vitadapter-convert SRC DST (and its tools/convert_weights.py wrapper) on an official
    ViT-Adapter file writes the same mmseg 1.x segmentor checkpoint as convert_official_file."""
    import subprocess
    import sys
    shapes = prefixed({**official_vit_shapes(DIM, DEPTH, POS_GRID), **official_adapter_shapes(DIM, DEFORM_HEADS)})
    shapes.update(official_heads_shapes(DIM))
    state = random_state(shapes)
    src = tmp_path / 'official.pth'
    torch.save(dict(meta=dict(CLASSES=('a', 'b')), state_dict=state), src)
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'convert_weights.py'), str(src),
                          str(tmp_path / 'tool.pth')], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert 'mmseg 1.x segmentor checkpoint' in out.stdout
    assert convert_main([str(src), str(tmp_path / 'command.pth')]) == 0
    assert 'wrote an mmseg 1.x segmentor checkpoint' in capsys.readouterr().out
    convert_official_file(str(src), str(tmp_path / 'direct.pth'))
    b = torch.load(tmp_path / 'direct.pth', weights_only=True)['state_dict']
    assert len(b) == len(state)
    for written in ('tool.pth', 'command.pth'):
        a = torch.load(tmp_path / written, weights_only=True)['state_dict']
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
