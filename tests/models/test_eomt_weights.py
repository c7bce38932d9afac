"""EoMT checkpoints of transformers and tue-mps/eomt, loaded into vitadapter's EoMT, give the
originals' predictions (vitadapter.models.eomt_checkpoint).

transformers: its own ``EomtForUniversalSegmentation`` and, where installed (transformers >= 5),
``EomtDinov3ForUniversalSegmentation``; tiny (4 blocks, width 64, 2 heads, 4 registers, 6 queries
in the last 2 blocks, 5 classes), random weights on the 2^-12 grid (exact in a float32 file), saved
with ``save_pretrained``, compared in float64 (SDPA: transformers' eager EoMT attention takes its
softmax in float32):

* eval, every ``attn_mask_probs`` 0: the one prediction;
* train mode, ``attn_mask_probs`` 1 and 0.5: all N + 1 predictions (transformers returns only the
  last; its ``predict`` is wrapped to record every one). Both models draw which queries drop their
  masks as ``torch.rand(B, Q)`` from the global generator, once per masked block, and draw nothing
  else: seeded alike before each call they draw the same. This checks the masked attention layout
  (queries first, then the prefix, then the patches; the previous prediction resized bilinearly
  to the patch grid, logit > 0) against transformers';
* at another size: transformers' model runs only at its config's ``image_size`` (the position
  table is an ``nn.Embedding`` over that grid; ``predict`` reshapes to ``grid_size``). The
  reference is transformers' own forward pass with exactly two things changed by the test: its
  ``grid_size``, and (DINOv2 style) its position table resized to the new grid by bicubic
  interpolation with antialias in float32 (``F.interpolate``, written here), the rule vitadapter's
  trunk applies at run time for these weights (neither transformers nor tue-mps runs at another
  size, so there is no original rule to follow). Everything else is transformers' code: layers,
  masks, draws, head. A re-implementation of the forward pass would share this test's reading of
  transformers; this shares only the stated resize rule. DINOv3 computes its RoPE for any size
  itself: only ``grid_size`` changes. Sizes are whole patches (vitadapter pads partial patches,
  transformers drops them).

tue-mps/eomt: Lightning checkpoints written here with their key names (models/eomt.py,
models/vit.py, training/lightning_module.py): the DINOv2 one from a random EoMT of ours (their
encoder is the same timm model), the DINOv3 ones from transformers' ``DINOv3ViTModel`` renamed as
their ``ViT.transformers_to_timm`` does, absolute and as delta weights (trained minus pretrained).
"""
import math

import pytest
import torch
import torch.nn.functional as F

from vitadapter import CheckpointError
from vitadapter.models import EoMT
from vitadapter.models.eomt_checkpoint import (LOSS_WEIGHTS, NORMALISATION, detect_eomt_layout,
                                               eomt_from_hf, eomt_kwargs_from_hf_config,
                                               load_eomt_checkpoint, read_eomt_checkpoint)

from conftest import HAS_TIMM_DINOV3, rel_error

transformers = pytest.importorskip('transformers')
HAS_DINOV3_VIT = hasattr(transformers, 'DINOv3ViTConfig')  # transformers >= 4.56
HAS_EOMT_DINOV3 = hasattr(transformers, 'EomtDinov3ForUniversalSegmentation')  # transformers >= 5
requires_dinov3_vit = pytest.mark.skipif(
    not (HAS_DINOV3_VIT and HAS_TIMM_DINOV3), reason='needs transformers >= 4.56 (DINOv3ViTModel) and timm >= 1.0.20')
requires_eomt_dinov3 = pytest.mark.skipif(
    not (HAS_EOMT_DINOV3 and HAS_TIMM_DINOV3), reason='timm < 1.0.20 has no DINOv3, or ' + f'transformers {transformers.__version__} has no EomtDinov3ForUniversalSegmentation '
                                f'(it came with transformers 5)')

# float64 on both sides; the implementations differ only in the order of operations (one fused qkv
# projection against three, other attention and einsum kernels). A dot product of n terms rounds
# by at most n * 2^-53 of the sum of its terms' magnitudes; the widest here is the patch embedding
# (n = 3 * 16 * 16 = 768), and with these weights a sum of magnitudes is at most ~10 times its
# result. About 16 such layers in series (patch embedding, 4 blocks of 3 products, the final norm,
# the 3-layer mask MLP, 2 upscaling blocks, the mask einsum) give 16 * 768 * 2^-53 * 10 = 1.4e-11
# of the logits' scale: REL_TOL leaves a factor 7 for what the LayerNorms' rescaling adds, and is
# 10^7 below what a wrong mapping moves (>= 1e-3: test_the_comparisons_see_a_wrong_model).
REL_TOL = 1e-10
# DINOv3's RoPE tables are float32 on both sides, computed by two formulas (transformers: 2 pi c
# f, timm: 2 pi c / p): each angle (|angle| < 2 pi * rescale) carries <= 3 float32 roundings
# (2^-24) of its operands, and tests/weights/test_weights_dinov3.py bounds what that does to 4
# blocks by 64 * 2 pi * 3 * 2^-24 = 7.2e-5 of the features' scale. The final norm and the head
# pass a relative error on at most a few times (the mask logits are a product of two paths):
# 4 x that, times 2 for the train-time coordinate rescaling (up to 2x the angles).
ROPE_TOL = 8 * 64 * 2 * math.pi * 3 * 2.0 ** -24
GRID = 2.0 ** -12
PATCH = 16
SIZES = ((64, 64), (80, 112))  # the config's, another (non-square) one
TINY = dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=2, image_size=64, patch_size=PATCH,
            num_register_tokens=4, num_queries=6, num_blocks=2, num_labels=5, attn_implementation='sdpa')
OURS = dict(num_classes=5, num_queries=6, num_blocks=2, img_size=64, patch_size=PATCH, depth=4, embed_dim=64,
            num_heads=2)
DINOV2 = 'vit_small_patch14_reg4_dinov2'  # at patch 16, as tue-mps builds it
DINOV3 = 'vit_small_patch16_dinov3_qkvb'


def randomize(model: torch.nn.Module) -> torch.nn.Module:
    """Every parameter ~ N(0, 0.1) (LayerNorm weights 1 + that), on the 2^-12 grid: a float32 file
    stores them exactly, and a difference of two such weights (a delta checkpoint) is exact."""
    with torch.no_grad():
        for module in model.modules():
            for name, p in module.named_parameters(recurse=False):
                p.normal_(0, 0.1)
                if isinstance(module, torch.nn.LayerNorm) and name == 'weight':
                    p.add_(1)
                p.copy_((p / GRID).round() * GRID)
    return model.eval()


def images(*sizes, batch=2):
    return [torch.randn(batch, 3, h, w, dtype=torch.float64) for h, w in sizes]


# ----------------------------------------------------------------------------- transformers
def build_hf(kind: str = 'dinov2', **overrides):
    """A tiny random transformers EoMT, attn_mask_probs 0 (a published checkpoint's)."""
    if kind == 'dinov3':
        config = transformers.EomtDinov3Config(**dict(TINY, intermediate_size=256, **overrides))
        hf = transformers.EomtDinov3ForUniversalSegmentation(config)
    else:
        hf = transformers.EomtForUniversalSegmentation(transformers.EomtConfig(**dict(TINY, **overrides)))
    randomize(hf).attn_mask_probs.zero_()
    return hf


def saved(hf, folder):
    hf.save_pretrained(folder)  # config.json + model.safetensors
    return str(folder)


@pytest.fixture(autouse=True)
def hf_masks_in_query_dtype(monkeypatch):
    """torch's CPU SDPA computes wrong attention for float64 queries with a float32 additive mask of
    16 keys or more (torch 2.13; a bool or float64 mask is right), and transformers'
    EomtForUniversalSegmentation builds its mask with ``.float()``. In float32, as the model runs,
    the dtypes match; in this float64 test the mask gets the query's dtype (the same values: 1 and
    -1e9 are exact in both)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    sdpa = ALL_ATTENTION_FUNCTIONS['sdpa']

    def sdpa_mask_in_query_dtype(module, query, key, value, attention_mask, *args, **kwargs):
        if attention_mask is not None and attention_mask.is_floating_point():
            attention_mask = attention_mask.to(query.dtype)
        return sdpa(module, query, key, value, attention_mask, *args, **kwargs)
    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS, 'sdpa', sdpa_mask_in_query_dtype)


def hf_predictions(hf, x, seed):
    """Every prediction of transformers' forward pass: [(mask logits, class logits)]."""
    recorded, predict = [], hf.predict
    hf.predict = lambda tokens: recorded.append(predict(tokens)) or recorded[-1]
    try:
        torch.manual_seed(seed)
        with torch.no_grad():
            out = hf(pixel_values=x)
    finally:
        del hf.predict
    assert torch.equal(recorded[-1][0], out.masks_queries_logits)
    return [m for m, _ in recorded], [c for _, c in recorded]


def our_predictions(model, x, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model(x)
    return out.mask_logits, out.class_logits


def at_size(hf, grid, monkeypatch):
    """transformers' model at another patch grid: its grid_size, and (DINOv2 style) its position
    table resized bicubically with antialias in float32 (the module doc says why)."""
    monkeypatch.setattr(hf, 'grid_size', tuple(grid))
    emb = hf.embeddings
    if not hasattr(emb, 'position_embeddings'):
        return  # DINOv3: RoPE for any size
    table = emb.position_embeddings.weight  # (n * n, D), patches only
    side = math.isqrt(table.shape[0])

    def forward(pixel_values):  # EomtEmbeddings.forward, with the table resized
        patches = emb.patch_embeddings(pixel_values)
        square = table.float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
        pos = F.interpolate(square, size=tuple(grid), mode='bicubic', antialias=True, align_corners=False)
        pos = pos.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1).to(table.dtype)
        b = pixel_values.shape[0]
        tokens = torch.cat([emb.cls_token.expand(b, -1, -1), emb.register_tokens.expand(b, -1, -1),
                            patches + pos], dim=1)
        return emb.dropout(tokens)
    monkeypatch.setattr(emb, 'forward', forward)


def set_mode(hf, model, probs):
    """probs 0: eval (one prediction); > 0: train mode, every block's probability ``probs``."""
    for m in (hf, model):
        m.attn_mask_probs.fill_(probs)
        m.train(probs > 0)


def compare(hf, model, sizes, probs, monkeypatch, tol, draws=None):
    """All predictions of both at each size. ``draws``: the forward pass draws random numbers (masks
    released at random, RoPE rescaling): ours with other draws (another seed) fails the comparison,
    so passing it means the draws were the same."""
    draws = 0 < probs < 1 if draws is None else draws
    for i, x in enumerate(images(*sizes)):
        with monkeypatch.context() as patch:
            grid = (x.shape[-2] // PATCH, x.shape[-1] // PATCH)
            if x.shape[-2:] != (64, 64):
                at_size(hf, grid, patch)
            theirs = hf_predictions(hf, x, seed=i)
        ours = our_predictions(model, x, seed=i)
        assert len(ours[0]) == len(theirs[0]) == (1 if probs == 0 else model.num_blocks + 1)
        assert rel_error(ours[0], theirs[0]) <= tol, (x.shape, probs)
        assert rel_error(ours[1], theirs[1]) <= tol, (x.shape, probs)
        if draws:
            assert rel_error(our_predictions(model, x, seed=i + 100)[0], theirs[0]) > tol


@pytest.mark.parametrize('saved_as', ['folder', 'file'])
def test_hugging_face_eomt_loads_strictly(tmp_path, saved_as):
    folder = saved(build_hf(), tmp_path)
    path = folder if saved_as == 'folder' else f'{folder}/model.safetensors'
    model = EoMT(DINOV2, **OURS)
    report = load_eomt_checkpoint(model, path)
    assert report.format == 'Hugging Face EomtForUniversalSegmentation'
    assert report.loaded == len(model.state_dict()) and not report.missing and not report.unexpected
    assert report.dropped == {LOSS_WEIGHTS: ['criterion.empty_weight']} and not report.notes
    assert 'criterion.empty_weight' in str(report)
    assert torch.equal(model.attn_mask_probs, torch.zeros(2))
    assert read_eomt_checkpoint(path).hf_config['model_type'] == 'eomt'


@pytest.mark.parametrize('probs', [0.0, 1.0, 0.5])
def test_hugging_face_eomt_parity(tmp_path, monkeypatch, probs):
    hf = build_hf()
    model = EoMT(DINOV2, **OURS)
    load_eomt_checkpoint(model, saved(hf, tmp_path))
    hf, model = hf.double(), model.double()
    set_mode(hf, model, probs)
    compare(hf, model, SIZES, probs, monkeypatch, REL_TOL)


@pytest.mark.parametrize('ffn', ['mlp', 'swiglu'])
def test_eomt_from_hf_builds_the_matching_model(tmp_path, monkeypatch, ffn):
    hf = build_hf(use_swiglu_ffn=ffn == 'swiglu', mlp_ratio=3, layer_norm_eps=1e-5)
    model = eomt_from_hf(saved(hf, tmp_path))
    kwargs = eomt_kwargs_from_hf_config(hf.config.to_dict())
    # (width 64 is no released size: tue-mps's default name, sized by the kwargs)
    expected = 'vit_giant_patch14_reg4_dinov2' if ffn == 'swiglu' else 'vit_large_patch14_reg4_dinov2'
    assert kwargs['model_name'] == expected
    assert (model.num_queries, model.num_classes, model.num_blocks) == (6, 5, 2)
    assert model.load_report.loaded == len(model.state_dict()) and not model.load_report.notes
    hf, model = hf.double(), model.double()
    set_mode(hf, model, 0.5)
    compare(hf, model, SIZES[:1], 0.5, monkeypatch, REL_TOL)
    assert eomt_from_hf(str(tmp_path), masked_attention=False).masked_attention is False  # overrides


def test_the_comparisons_see_a_wrong_model(tmp_path, monkeypatch):
    """What REL_TOL separates: the masks change the predictions, and a model loaded with two
    heads' queries and keys swapped is far off."""
    hf = build_hf()
    folder = saved(hf, tmp_path)
    model = EoMT(DINOV2, **OURS)
    load_eomt_checkpoint(model, folder)
    unmasked = EoMT(DINOV2, masked_attention=False, **OURS)
    load_eomt_checkpoint(unmasked, folder)
    x = images((64, 64))[0]
    model, unmasked = model.double().train(), unmasked.double().train()
    model.attn_mask_probs.fill_(1)
    assert rel_error(our_predictions(model, x, 0)[0][-1], our_predictions(unmasked, x, 0)[0][-1]) > 1e-3
    hf = hf.double().eval()
    with torch.no_grad():
        q = model.trunk.model.blocks[3].attn.qkv.weight
        q[:64], q[64:128] = q[64:128].clone(), q[:64].clone()
    set_mode(hf, model, 0.0)
    assert rel_error(our_predictions(model, x, 0)[0], hf_predictions(hf, x, 0)[0]) > 1e-3


@requires_eomt_dinov3
@pytest.mark.parametrize('probs', [0.0, 1.0, 0.5])
def test_hugging_face_eomt_dinov3_parity(tmp_path, monkeypatch, probs):
    """transformers' EoMT on DINOv3 layers. The train-time RoPE coordinate rescaling of the config
    (pos_embed_rescale=2) is kept: eomt_from_hf passes it to timm's DINOv3, which draws it the same
    way, first in the forward pass as transformers does."""
    hf = build_hf('dinov3', layer_norm_eps=1e-5)
    model = eomt_from_hf(saved(hf, tmp_path))
    report = model.load_report
    assert report.format == 'Hugging Face EomtDinov3ForUniversalSegmentation' and not report.notes
    assert report.loaded == len(model.state_dict()) and model.trunk.model_name == DINOV3
    hf, model = hf.double(), model.double()
    set_mode(hf, model, probs)
    compare(hf, model, SIZES, probs, monkeypatch, ROPE_TOL, draws=probs > 0)


@requires_eomt_dinov3
def test_hugging_face_eomt_dinov3_into_a_model_of_another_norm_eps(tmp_path):
    """An explicit model whose LayerNorm epsilon is not the config's (timm's DINOv3 default 1e-5,
    EomtDinov3Config's 1e-6): loaded, with a note."""
    folder = saved(build_hf('dinov3'), tmp_path)
    model = EoMT(DINOV3, **OURS)
    report = load_eomt_checkpoint(model, folder)
    assert not report.missing and any('layer_norm_eps=1e-06' in note for note in report.notes)


def test_configs_timm_cannot_represent_are_refused():
    base = dict(model_type='eomt', hidden_size=64, num_hidden_layers=4, patch_size=16, id2label={'0': 'a'})
    with pytest.raises(CheckpointError, match="hidden_act='gelu_new'.*GELU"):
        eomt_kwargs_from_hf_config(dict(base, hidden_act='gelu_new'))
    with pytest.raises(CheckpointError, match='num_upscale_blocks=3: EoMT derives 2 from patch 16'):
        eomt_kwargs_from_hf_config(dict(base, num_upscale_blocks=3))
    dinov3 = dict(base, model_type='eomt_dinov3')
    with pytest.raises(CheckpointError, match='use_gated_mlp=True.*SiLU'):
        eomt_kwargs_from_hf_config(dict(dinov3, use_gated_mlp=True, hidden_act='silu'))
    with pytest.raises(CheckpointError, match='key_bias=True'):
        eomt_kwargs_from_hf_config(dict(dinov3, key_bias=True))
    with pytest.raises(CheckpointError, match="model_type='dinov2'"):
        eomt_kwargs_from_hf_config(dict(base, model_type='dinov2'))


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize('change, expected', [
    (dict(num_queries=8), r'the checkpoint has 6 queries, the model 8: build EoMT\(num_queries=6\)'),
    (dict(num_classes=7), r'the checkpoint has 5 classes \(\+ no object\), the model 7: build EoMT\(num_classes=5\)'),
    (dict(num_blocks=3), r'join its last 2 blocks, the model\'s its last 3: build EoMT\(num_blocks=2\)'),
    (dict(depth=6), r'4 blocks of width 64, the model\'s 6 of width 64: .*depth=4, embed_dim=64'),
    (dict(patch_size=8), r'patches are 16x16, the model\'s 8x8: pass patch_size=16'),
    (dict(img_size=96), r'covers 16 patches, the model\'s 36: pass img_size=64'),
    (dict(reg_tokens=2), r'4 register tokens, the model 2: pass reg_tokens=4'),
    (dict(mlp_ratio=2), r'12 tensors of another shape, e.g. .*trunk\.model\.blocks\.0\.mlp\.fc1\.weight: '
                        r'checkpoint \(256, 64\) vs model \(128, 64\)'),
])
def test_a_checkpoint_for_another_eomt_is_refused_with_the_fix(tmp_path, change, expected):
    folder = saved(build_hf(), tmp_path)
    model = EoMT(DINOV2, **dict(OURS, **change))
    with pytest.raises(CheckpointError, match=expected):
        load_eomt_checkpoint(model, folder)


def test_another_number_of_classes_loads_partially_on_purpose(tmp_path):
    """strict=False (fine-tuning on other classes): all but the class head, reported."""
    folder = saved(build_hf(), tmp_path)
    model = EoMT(DINOV2, **dict(OURS, num_classes=7))
    report = load_eomt_checkpoint(model, folder, strict=False)
    assert sorted(report.missing) == ['head.class_head.bias', 'head.class_head.weight']
    assert sorted(report.dropped["another shape than the model's (strict=False)"]) == sorted(report.missing)
    assert report.loaded == len(model.state_dict()) - 2 and 'build EoMT(num_classes=5)' in str(report)


def test_missing_and_unexpected_tensors_are_refused_by_pattern(tmp_path):
    from safetensors.torch import save_file
    state = {k: v.contiguous() for k, v in build_hf().state_dict().items() if not k.startswith('mask_head.')}
    state['extra_head.weight'] = torch.zeros(3)
    path = str(tmp_path / 'eomt.safetensors')
    save_file(state, path)
    model = EoMT(DINOV2, **OURS)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"leaves 6 of the model's tensors as initialised: "
                                              r"head\.mask_head\.\*\.weight \(x3\), head\.mask_head\.\*\.bias "
                                              r"\(x3\); it has 1 tensors the model has no place for: "
                                              r"extra_head\.weight.*strict=False") as err:
        load_eomt_checkpoint(model, path)
    assert len(err.value.report.missing) == 6
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # nothing loaded
    report = load_eomt_checkpoint(model, path, strict=False)
    assert report.unexpected == ['extra_head.weight'] and len(report.missing) == 6


def test_unknown_layouts_are_refused(tmp_path):
    vit = {f'trunk.{k}': v for k, v in EoMT(DINOV2, **OURS).trunk.model.state_dict().items()}
    path = str(tmp_path / 'vit.pth')
    torch.save(vit, path)
    with pytest.raises(CheckpointError, match=r"is no EoMT checkpoint.*trunk\.blocks\.\*\.norm1\.weight.*"
                                              r"EoMT\(\.\.\., checkpoint=PATH\)"):
        read_eomt_checkpoint(path)
    assert detect_eomt_layout({'query.weight': torch.zeros(1)}) is None


# ----------------------------------------------------------------------------- tue-mps
IMAGENET_MEAN, IMAGENET_STD = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])


def tue_mps_head(model: EoMT) -> dict:
    """tue-mps's names for everything of an EoMT of ours but the encoder (models/eomt.py)."""
    out = {'network.q.weight': model.queries.weight, 'network.attn_mask_probs': model.attn_mask_probs}
    for key, value in model.head.state_dict().items():  # class_head, mask_head.{0,2,4}, upscale.i.*
        out[f'network.{key}'] = value
    return out


def lightning_checkpoint(path, network: dict, normalisation=(IMAGENET_MEAN, IMAGENET_STD)):
    """A Lightning .ckpt as tue-mps's LightningModule saves it (MaskClassificationLoss's empty_weight
    included)."""
    state = dict(network)
    state['network.encoder.pixel_mean'] = normalisation[0].reshape(1, -1, 1, 1)
    state['network.encoder.pixel_std'] = normalisation[1].reshape(1, -1, 1, 1)
    state['criterion.empty_weight'] = torch.ones(6)
    torch.save({'epoch': 11, 'global_step': 1200, 'pytorch-lightning_version': '2.5.1', 'state_dict': state,
                'loops': {}, 'callbacks': {}, 'optimizer_states': [], 'lr_schedulers': []}, path)
    return str(path)


def test_tue_mps_dinov2_checkpoint(tmp_path):
    source = randomize(EoMT(DINOV2, **OURS))
    backbone = {f'network.encoder.backbone.{k}': v for k, v in source.trunk.model.state_dict().items()}
    path = lightning_checkpoint(tmp_path / 'eomt.ckpt', {**backbone, **tue_mps_head(source)})
    model = EoMT(DINOV2, **OURS)
    report = load_eomt_checkpoint(model, path)
    assert report.format == 'tue-mps/eomt (timm DINOv2 encoder)' and report.loaded == len(model.state_dict())
    assert report.dropped == {LOSS_WEIGHTS: ['criterion.empty_weight'],
                              NORMALISATION: ['network.encoder.pixel_mean', 'network.encoder.pixel_std']}
    assert not report.notes and not report.missing and not report.unexpected
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in source.state_dict().items())
    x = images((64, 64))[0].float()
    source.attn_mask_probs.zero_(), model.attn_mask_probs.zero_(), model.eval()
    assert torch.equal(our_predictions(model, x, 0)[0][0], our_predictions(source, x, 0)[0][0])
    torch.save(model.state_dict(), tmp_path / 'ours.pth')  # and our own layout, as saved
    again = EoMT(DINOV2, **OURS)
    assert load_eomt_checkpoint(again, str(tmp_path / 'ours.pth')).format == 'vitadapter EoMT'
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())


def test_lightning_checkpoints_that_pickle_other_objects(tmp_path):
    """Lightning keeps hyper-parameters beside the state dict; objects outside torch's allowlist
    are refused, or replaced by inert placeholders on request (never run)."""
    import argparse
    source = randomize(EoMT(DINOV2, **OURS))
    backbone = {f'network.encoder.backbone.{k}': v for k, v in source.trunk.model.state_dict().items()}
    path = str(tmp_path / 'eomt.ckpt')
    torch.save({'state_dict': {**backbone, **tue_mps_head(source)},
                'hyper_parameters': argparse.Namespace(lr=1e-4)}, path)
    with pytest.raises(CheckpointError, match=r"argparse\.Namespace.*pickled_objects='placeholder'"):
        read_eomt_checkpoint(path)
    report = load_eomt_checkpoint(EoMT(DINOV2, **OURS), read_eomt_checkpoint(path, pickled_objects='placeholder'))
    assert report.loaded == len(source.state_dict())


def test_tue_mps_normalisation_other_than_imagenets_is_noted(tmp_path):
    source = randomize(EoMT(DINOV2, **OURS))
    backbone = {f'network.encoder.backbone.{k}': v for k, v in source.trunk.model.state_dict().items()}
    path = lightning_checkpoint(tmp_path / 'eomt.ckpt', {**backbone, **tue_mps_head(source)},
                                (torch.full((3,), 0.5), torch.full((3,), 0.5)))
    report = load_eomt_checkpoint(EoMT(DINOV2, **OURS), path)
    assert any('mean (0.5, 0.5, 0.5), std (0.5, 0.5, 0.5)' in note for note in report.notes)


def build_hf_dinov3_vit():
    config = transformers.DINOv3ViTConfig(hidden_size=64, num_hidden_layers=4, num_attention_heads=2,
                                          intermediate_size=256, patch_size=PATCH, image_size=64,
                                          num_register_tokens=4, attn_implementation='sdpa')
    return randomize(transformers.DINOv3ViTModel(config))


def legacy_dinov3_keys(state: dict) -> dict:
    """DINOv3ViTModel's keys as transformers 4.56-4.57 names them (layer.N; transformers 5's
    state_dict(): model.layer.N, its save_pretrained writes layer.N): the ones tue-mps (which pins
    transformers 4) and the released files have."""
    return {(k[len('model.'):] if k.startswith('model.layer.') else k): v for k, v in state.items()}


def tue_mps_dinov3_backbone(state: dict) -> dict:
    """transformers' DINOv3ViTModel keys as tue-mps's ViT.transformers_to_timm leaves them:
    embeddings -> patch_embed (mask_token deleted), layer -> blocks."""
    out = {}
    for key, value in legacy_dinov3_keys(state).items():
        if key == 'embeddings.mask_token':
            continue
        key = key.replace('embeddings.', 'patch_embed.', 1) if key.startswith('embeddings.') else \
            key.replace('layer.', 'blocks.', 1) if key.startswith('layer.') else key
        out['network.encoder.backbone.' + key] = value
    return out


@requires_dinov3_vit
def test_tue_mps_dinov3_delta_checkpoint(tmp_path):
    """Delta weights (trained - pretrained encoder, the rest as is; the normalisation buffers, equal
    on both sides, as zeros) + the pretrained DINOv3ViTModel folder = the absolute checkpoint = the
    trained DINOv3ViTModel loaded by the trunk. On the 2^-12 grid every difference and sum is exact."""
    from safetensors.torch import save_file
    pretrained, trained = build_hf_dinov3_vit(), build_hf_dinov3_vit()
    base = str(tmp_path / 'dinov3')
    pretrained.save_pretrained(base)
    # the trunk's own loading of the trained DINOv3ViTModel (in transformers 4's names)
    save_file({k: v.contiguous() for k, v in legacy_dinov3_keys(trained.state_dict()).items()},
              str(tmp_path / 'trained.safetensors'))
    head = tue_mps_head(randomize(EoMT(DINOV3, **OURS)))
    head['network.attn_mask_probs'] = torch.zeros(2)
    p_state, t_state = pretrained.state_dict(), trained.state_dict()
    absolute = lightning_checkpoint(tmp_path / 'absolute.ckpt', {**tue_mps_dinov3_backbone(t_state), **head})
    delta = {k: t_state[k] - p_state[k] for k in t_state}
    delta = lightning_checkpoint(tmp_path / 'delta.ckpt', {**tue_mps_dinov3_backbone(delta), **head},
                                 (torch.zeros(3), torch.zeros(3)))

    from_delta = EoMT(DINOV3, **OURS)
    report = load_eomt_checkpoint(from_delta, delta, delta_base=base)
    assert report.format == 'tue-mps/eomt (Hugging Face DINOv3 encoder)' and not report.missing
    assert any(f'delta + {base}' in note for note in report.notes)
    from_absolute = EoMT(DINOV3, **OURS)
    load_eomt_checkpoint(from_absolute, absolute, delta_base=False)
    expected = EoMT(DINOV3, checkpoint=str(tmp_path / 'trained.safetensors'), **OURS).state_dict()
    for key, value in from_absolute.state_dict().items():
        assert torch.equal(from_delta.state_dict()[key], value), key
        if key.startswith('trunk.'):
            assert torch.equal(expected[key], value), key
    assert torch.equal(from_delta.attn_mask_probs, torch.zeros(2))

    # the base as a timm-layout file (the pretrained weights as the trunk loads them)
    save_file({k: v.contiguous() for k, v in legacy_dinov3_keys(p_state).items()},
              str(tmp_path / 'pretrained.safetensors'))
    timm_base = str(tmp_path / 'pretrained_timm.pth')
    torch.save(EoMT(DINOV3, checkpoint=str(tmp_path / 'pretrained.safetensors'), **OURS).trunk.model.state_dict(),
               timm_base)
    from_timm_base = EoMT(DINOV3, **OURS)
    assert 'timm layout' in str(load_eomt_checkpoint(from_timm_base, delta, delta_base=timm_base))
    assert all(torch.equal(v, from_timm_base.state_dict()[k]) for k, v in from_delta.state_dict().items())

    with pytest.raises(CheckpointError, match=r'tue-mps DINOv3 checkpoint.*delta_base=.*delta_base=False'):
        load_eomt_checkpoint(EoMT(DINOV3, **OURS), delta)
    other = transformers.DINOv3ViTModel(transformers.DINOv3ViTConfig(
        hidden_size=64, num_hidden_layers=3, num_attention_heads=2, intermediate_size=256, patch_size=PATCH,
        image_size=64, num_register_tokens=4))
    other.save_pretrained(tmp_path / 'other')
    with pytest.raises(CheckpointError, match=r'is not the backbone .* was trained from: it lacks '
                                              r'blocks\.\*\.norm1\.weight'):
        load_eomt_checkpoint(EoMT(DINOV3, **OURS), delta, delta_base=str(tmp_path / 'other'))


def test_delta_base_is_only_for_tue_mps(tmp_path):
    folder = saved(build_hf(), tmp_path)
    with pytest.raises(CheckpointError, match='delta_base is for tue-mps checkpoints'):
        load_eomt_checkpoint(EoMT(DINOV2, **OURS), folder, delta_base=folder)


@requires_dinov3_vit
def test_a_dinov3_checkpoint_into_a_dinov2_model_names_the_model(tmp_path):
    trained = build_hf_dinov3_vit()
    head = tue_mps_head(randomize(EoMT(DINOV3, **OURS)))
    path = lightning_checkpoint(tmp_path / 'eomt.ckpt', {**tue_mps_dinov3_backbone(trained.state_dict()), **head})
    with pytest.raises(CheckpointError, match=r"a DINOv3 ViT \(rotary positions\), the model's "
                                              r"'vit_small_patch14_reg4_dinov2' is not: build "
                                              r"EoMT\('vit_small_patch16_dinov3_qkvb'"):
        load_eomt_checkpoint(EoMT(DINOV2, **OURS), path, delta_base=False)
    with pytest.raises(CheckpointError, match=r"q/v biases are non-zero but 'vit_small_patch16_dinov3' has none"):
        load_eomt_checkpoint(EoMT('vit_small_patch16_dinov3', **OURS), path, delta_base=False)
