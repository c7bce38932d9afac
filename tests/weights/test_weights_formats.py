"""Recognising checkpoint layouts, the load report, errors, the pos-embed interpolation option,
safe reading of training checkpoints and the ``vitadapter-convert`` command (vitadapter.convert)."""
import copy
import math
import os
import shutil

import pytest
import timm
import torch
from safetensors.torch import save_file

from vitadapter import CheckpointError, TimmViTTrunk, ViTPyramid
from vitadapter.convert import main as convert_main
from vitadapter.weights import (POS_EMBED_INTERPOLATIONS, convert_checkpoint, detect_format,
                                interpolate_pos_grid, load_checkpoint, read_checkpoint, read_state_dict)

from conftest import TINY, requires_mmseg, tiny
from test_weights_dinov3 import build_hf_dinov3, official_state_dict
from test_weights_sources import build_hf, official_dinov2_state_dict, randomize


def timm_vit(name='vit_base_patch16_224', **kwargs):
    return randomize(timm.create_model(name, img_size=64, **dict(TINY, **kwargs)))


def trunk_equals(trunk: TimmViTTrunk, reference: dict) -> bool:
    return all(torch.equal(v, reference[k]) for k, v in trunk.model.state_dict().items())


# ---------------------------------------------------------------------------- detection
def _mmseg_vit():
    VisionTransformer = pytest.importorskip('mmseg.models.backbones').VisionTransformer
    return VisionTransformer(img_size=64, embed_dims=64, num_layers=2, num_heads=2).state_dict()


def _mmpretrain_vit():
    backbones = pytest.importorskip('mmpretrain.models.backbones')
    return backbones.VisionTransformer(arch=dict(embed_dims=64, num_layers=2, num_heads=2,
                                                 feedforward_channels=128), img_size=64).state_dict()


LAYOUTS = {
    'timm': lambda: timm_vit().state_dict(),
    'hf-vit': lambda: build_hf('vit').state_dict(),
    'hf-dinov2': lambda: build_hf('dinov2').state_dict(),
    'hf-dinov2-reg': lambda: build_hf('dinov2_reg').state_dict(),
    'mmseg-vit': _mmseg_vit,
    'mmpretrain-vit': _mmpretrain_vit,
    'dinov2': lambda: official_dinov2_state_dict(timm_vit('vit_small_patch14_dinov2')),
    'dinov2-reg': lambda: official_dinov2_state_dict(timm_vit('vit_small_patch14_reg4_dinov2')),
    'mae': lambda: dict(timm_vit().state_dict(), mask_token=torch.zeros(1, 1, 64),
                        **{'decoder_embed.weight': torch.zeros(32, 64)}),
    'beit': lambda: timm_vit('beit_base_patch16_224').state_dict(),
    'dinov3': lambda: official_state_dict(ffn='swiglu', ffn_ratio=6),
    'hf-dinov3': lambda: build_hf_dinov3('swiglu').state_dict(),
}


@pytest.mark.parametrize('name', sorted(LAYOUTS))
def test_layouts_are_detected(name):
    assert detect_format(LAYOUTS[name]()).name == name


def test_unknown_layout_lists_what_was_seen(tmp_path):
    torch.save(timm.create_model('resnet18').state_dict(), tmp_path / 'resnet.pth')
    with pytest.raises(CheckpointError) as err:
        ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path / 'resnet.pth'))
    message = str(err.value)
    assert 'resnet.pth: unknown checkpoint layout for VisionTransformer, none of its 122 tensors fit' in message
    assert 'Seen: top-level names conv1 (1), bn1 (5), layer1 (24), layer2 (30), layer3 (30), ' \
           'layer4 (30), fc (2)' in message
    assert 'keys conv1.weight, bn1.weight, bn1.bias, bn1.running_mean' in message
    assert 'Supported layouts: Hugging Face DINOv3ViTModel, Hugging Face Dinov2WithRegistersModel, ' \
           'Hugging Face Dinov2Model, Hugging Face ViTModel, mmsegmentation VisionTransformer' in message


def test_recognised_layout_that_fits_nothing(tmp_path):
    torch.save({'lm_head.weight': torch.zeros(8, 64)}, tmp_path / 'head_only.pth')
    with pytest.raises(CheckpointError, match=r"is a BEiT \(microsoft/unilm\) checkpoint but none of "
                                              r"its tensors fit VisionTransformer"):
        ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path / 'head_only.pth'))


def test_hugging_face_dinov3_folder_is_not_taken_for_dinov2(tmp_path):
    """It has register tokens under HF's names, as Dinov2WithRegistersModel has, but none of the
    Dinov2 layout's blocks: it was once taken for one, and 1 tensor loaded silently. Now it is
    named, converted, and refused by a model that is not a DINOv3 one."""
    hf = build_hf_dinov3()
    hf.save_pretrained(tmp_path / 'hf')
    sd = read_state_dict(tmp_path / 'hf')
    assert 'embeddings.register_tokens' in sd and detect_format(sd).name == 'hf-dinov3'
    with pytest.raises(CheckpointError, match=r"hf \(Hugging Face DINOv3ViTModel layout\) does not fit the "
                                              r"model: DINOv3 weights need a timm DINOv3 model \(RoPE, "
                                              r"register tokens\): vit_small_patch14_reg4_dinov2 is not one"):
        ViTPyramid(**tiny('dinov2_reg'), checkpoint=str(tmp_path / 'hf'))


def test_checkpoint_with_two_vits_needs_a_prefix(tmp_path):
    teacher, student = timm_vit().state_dict(), timm_vit().state_dict()
    sd = {**{f'teacher.backbone.{k}': v for k, v in teacher.items()},
          **{f'student.backbone.{k}': v for k, v in student.items()}}
    torch.save(sd, tmp_path / 'train.pth')
    with pytest.raises(CheckpointError, match=r"holds 2 ViTs \(patch embeddings under prefixes "
                                              r"\['student.backbone.', 'teacher.backbone.'\]\); take "
                                              r"one out with `vitadapter-convert FILE OUT.safetensors "
                                              r"--prefix PREFIX`"):
        ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path / 'train.pth'))
    # the advice, followed
    assert convert_main([str(tmp_path / 'train.pth'), str(tmp_path / 'student.safetensors'),
                         '--prefix', 'student.backbone.']) == 0
    pyramid = ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path / 'student.safetensors'))
    assert trunk_equals(pyramid.trunk, student)
    trunk = TimmViTTrunk(**tiny('vit'))
    report = load_checkpoint(trunk.model, str(tmp_path / 'train.pth'), prefix='teacher.backbone.')
    assert trunk_equals(trunk, teacher)
    assert list(report.dropped) == ["outside the ViT (which is under 'teacher.backbone.')"]
    with pytest.raises(CheckpointError, match="no key of the checkpoint starts with prefix 'ema.'"):
        load_checkpoint(trunk.model, str(tmp_path / 'train.pth'), prefix='ema.')


def test_hugging_face_folder_errors(tmp_path):
    (tmp_path / 'config.json').write_text('{"model_type": "vit"}')
    with pytest.raises(CheckpointError, match=r"is not a Hugging Face model folder: it has none of "
                                              r"\('model.safetensors', .* \(it holds \['config.json'\]\)"):
        ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path))
    with pytest.raises(FileNotFoundError, match='or a Hugging Face model folder'):
        ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path / 'missing'))


def test_sharded_hugging_face_folder(tmp_path):
    hf = build_hf('dinov2')
    hf.save_pretrained(tmp_path / 'one')
    hf.save_pretrained(tmp_path / 'sharded', max_shard_size='100KB')
    assert (tmp_path / 'sharded' / 'model.safetensors.index.json').exists()
    one = TimmViTTrunk('vit_small_patch14_dinov2', img_size=56, **TINY, checkpoint=str(tmp_path / 'one'))
    sharded = TimmViTTrunk('vit_small_patch14_dinov2', img_size=56, **TINY,
                           checkpoint=str(tmp_path / 'sharded'))
    assert sharded.load_report.loaded == one.load_report.loaded == 62
    assert trunk_equals(sharded, one.model.state_dict())


# ---------------------------------------------------------------------------- report
def test_report_of_a_hugging_face_classifier(tmp_path):
    transformers = pytest.importorskip('transformers')
    config = transformers.ViTConfig(hidden_size=64, num_hidden_layers=4, num_attention_heads=2,
                                    intermediate_size=256, image_size=64, patch_size=16,
                                    layer_norm_eps=1e-6, num_labels=3)
    transformers.ViTForImageClassification(config).save_pretrained(tmp_path, safe_serialization=False)
    model = ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path))
    lines = str(model.load_report).splitlines()
    assert lines[:2] == [
        f"loaded 54 tensors from {tmp_path} (Hugging Face ViTModel layout)",
        "  position embeddings at other sizes: bicubic without antialias (HF ViT/Dinov2, mmseg, mmpretrain)"]
    # in the file's order (transformers 5 writes safetensors, whose keys are sorted)
    assert lines[2] in ("  dropped, outside the ViT (which is under 'vit.'): 2: classifier.weight, classifier.bias",
                        "  dropped, outside the ViT (which is under 'vit.'): 2: classifier.bias, classifier.weight")
    assert len(lines) == 3


def test_strict_loading_of_a_converted_checkpoint(tmp_path):
    VisionTransformer = pytest.importorskip('mmseg.models.backbones').VisionTransformer
    sd = VisionTransformer(img_size=64, embed_dims=64, num_layers=4, num_heads=2).state_dict()
    sd = {k: v for k, v in sd.items() if not k.startswith('layers.3.ffn.')}
    torch.save(sd, tmp_path / 'mmseg.pth')
    report = ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path / 'mmseg.pth'), strict_load=False).load_report
    assert 'missing (left as initialised): 6: blocks.*.mlp.fc1.weight, blocks.*.mlp.fc1.bias, ' \
           'blocks.*.mlp.fc2.weight, blocks.*.mlp.fc2.bias, norm.weight, norm.bias' in str(report)
    # strict (the default): the final norm (final_norm=False in mmseg) is pruned, so not needed...
    with pytest.raises(CheckpointError, match=r"mmseg.pth leaves 4 of the model's tensors as initialised: "
                                              r"blocks.\*.mlp.fc1.weight, .*fc2.bias\. .*mmsegmentation "
                                              r"VisionTransformer layout and holds 47 tensors"):
        ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path / 'mmseg.pth'))
    # ... unless the trunk applies it (norm=True); blocks after the last output are pruned: not needed
    with pytest.raises(CheckpointError, match=r"leaves 6 of the model's tensors .*norm.weight, norm.bias\."):
        ViTPyramid(**tiny('vit'), norm=True, checkpoint=str(tmp_path / 'mmseg.pth'))
    model = ViTPyramid(**tiny('vit'), out_indices=(2,), checkpoint=str(tmp_path / 'mmseg.pth'))
    assert len(model.load_report.missing) == 6 and model.trunk.block_indices == (2,)


def test_a_strict_load_that_fails_leaves_the_model_as_it_was(tmp_path):
    """load_checkpoint(strict=True) refuses before loading: none of the model's tensors changed."""
    from vitadapter.weights import load_checkpoint
    sd = {k: v for k, v in timm_vit().state_dict().items() if not k.startswith('blocks.3.')}
    model = timm_vit()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(CheckpointError, match="leaves .* of the model's tensors as initialised") as err:
        load_checkpoint(model, sd, strict=True)
    assert err.value.report.loaded > 0  # what would have loaded...
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # ... did not
    report = load_checkpoint(model, sd, strict=False)
    assert torch.equal(model.state_dict()['blocks.0.attn.qkv.weight'], sd['blocks.0.attn.qkv.weight'])
    assert any(k.startswith('blocks.3.') for k in report.missing)


def test_mae_pretraining_checkpoint(tmp_path):
    donor = timm_vit()
    sd = dict(donor.state_dict(), mask_token=torch.zeros(1, 1, 64),
              decoder_pos_embed=torch.zeros(1, 17, 32), **{
                  'decoder_embed.weight': torch.zeros(32, 64), 'decoder_embed.bias': torch.zeros(32),
                  'decoder_blocks.0.norm1.weight': torch.ones(32), 'decoder_pred.weight': torch.zeros(768, 32)})
    torch.save({'model': sd}, tmp_path / 'mae_pretrain.pth')
    model = ViTPyramid(**tiny('vit'), out_indices=(0, 1, 2, 3), norm=True,
                       checkpoint=str(tmp_path / 'mae_pretrain.pth'))
    assert trunk_equals(model.trunk, donor.state_dict())
    report = model.load_report
    assert report.format == 'MAE pretraining (facebookresearch/mae)'
    assert report.dropped == {
        'MAE decoder (pretraining only, not part of the encoder)':
            ['decoder_pos_embed', 'decoder_embed.weight', 'decoder_embed.bias',
             'decoder_blocks.0.norm1.weight', 'decoder_pred.weight'],
        'mask token (masked-image modelling only)': ['mask_token']}
    assert report.ignored == ['head.weight', 'head.bias']


def test_beit_pretraining_checkpoint_with_shared_relative_position_bias(tmp_path):
    donor = timm_vit('beit_base_patch16_224')
    sd = {k: v for k, v in donor.state_dict().items() if 'relative_position_bias_table' not in k}
    shared = torch.randn_like(donor.state_dict()['blocks.0.attn.relative_position_bias_table'])
    sd.update({'rel_pos_bias.relative_position_bias_table': shared,
               'rel_pos_bias.relative_position_index': torch.zeros(17, 17, dtype=torch.long),
               'mask_token': torch.zeros(1, 1, 64), 'lm_head.weight': torch.zeros(8192, 64),
               'lm_head.bias': torch.zeros(8192)})
    torch.save({'model': sd}, tmp_path / 'beit_pretrain.pth')
    model = ViTPyramid(model_name='beit_base_patch16_224', img_size=64, **TINY, out_indices=(0, 1, 2, 3),
                       checkpoint=str(tmp_path / 'beit_pretrain.pth'))
    own = model.trunk.model.state_dict()
    assert all(torch.equal(own[f'blocks.{i}.attn.relative_position_bias_table'], shared) for i in range(4))
    report = model.load_report
    assert not report.missing and not report.unexpected
    assert report.dropped == {'mask token (masked-image modelling only)': ['mask_token'],
                              'BEiT pretraining head (lm_head, cls_pt_layers)': ['lm_head.weight', 'lm_head.bias'],
                              'relative position index (a buffer timm rebuilds)':
                                  ['rel_pos_bias.relative_position_index']}


def test_patch_embedding_is_resampled_when_patch_sizes_differ(tmp_path):
    hf = build_hf('vit')
    hf.save_pretrained(tmp_path)
    trunk = TimmViTTrunk(**tiny('vit'), patch_size=8, checkpoint=str(tmp_path))
    assert sorted(trunk.load_report.resized) == ['patch_embed.proj.weight', 'pos_embed']
    assert trunk.model.patch_embed.proj.weight.shape == (64, 3, 8, 8)
    # FlexiViT's definition, solved here in float64: the 8x8 kernel whose response to the resized
    # patch (bicubic without antialias, HF's rule) is closest to the 16x16 kernel's response to
    # the patch, i.e. argmin_w ||R^T w - w_16|| with R the (64, 256) resize matrix.
    one_side = bicubic_matrix(16, 8, 2.0, antialias=False)
    resize = torch.kron(one_side, one_side)
    old = hf.embeddings.patch_embeddings.projection.weight.detach().double().reshape(64 * 3, 256)
    expected = torch.linalg.lstsq(resize.T, old.T).solution.T.reshape(64, 3, 8, 8)
    # float32 rounding of up to 64 terms, amplified by at most cond(R)^2 in a least-squares solve
    cond = torch.linalg.cond(resize)
    tol = cond ** 2 * 64 * torch.finfo(torch.float32).eps * expected.abs().max()
    assert (trunk.model.patch_embed.proj.weight.double() - expected).abs().max() <= tol


# ---------------------------------------------------------------------------- pretrained=True
def test_pretrained_true_reads_timm_file_overlay_offline(tmp_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    donor = timm_vit(num_classes=10)
    save_file({k: v.contiguous() for k, v in donor.state_dict().items()}, str(tmp_path / 'w.safetensors'))
    model = ViTPyramid(**tiny('vit'), out_indices=(0, 1, 2, 3), norm=True, pretrained=True,
                       pretrained_cfg_overlay=dict(file=str(tmp_path / 'w.safetensors')))
    assert trunk_equals(model.trunk, donor.state_dict())


# ---------------------------------------------------------------------------- interpolation
def _cubic(x: float, a: float) -> float:
    """Keys' cubic convolution kernel with parameter ``a``."""
    x = abs(x)
    if x <= 1:
        return ((a + 2) * x - (a + 3)) * x * x + 1
    return (((x - 5) * x + 8) * x - 4) * a if x < 2 else 0.0


def bicubic_matrix(n_in: int, n_out: int, scale: float, antialias: bool) -> torch.Tensor:
    """(n_out, n_in) float64 weights of 1-D bicubic resampling, written from the definitions, not
    from torch: output i samples input position (i + 0.5) * scale - 0.5 (``scale`` input pixels per
    output pixel). Without antialias: a = -0.75, 4 taps, indices clamped at the borders. With
    antialias (PIL's filter): a = -0.5, the kernel stretched by the scale when downsampling, taps
    outside the input left out and the weights renormalised."""
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    stretch = max(scale, 1.0) if antialias else 1.0
    for i in range(n_out):
        src = (i + 0.5) * scale - 0.5
        for k in range(math.floor(src - 2 * stretch), math.ceil(src + 2 * stretch) + 1):
            w = _cubic((src - k) / stretch, -0.5 if antialias else -0.75)
            if not antialias:
                m[i, min(max(k, 0), n_in - 1)] += w
            elif 0 <= k < n_in:
                m[i, k] += w
        if antialias:
            m[i] /= m[i].sum()
    return m


@pytest.mark.parametrize('new', [(7, 9), (3, 2)])
def test_interpolation_rules(new):
    """Each rule against separable bicubic weights computed independently in float64 (upsampling
    and downsampling a 5x7 grid). The scale is new/old per side, except for 'dinov2', which asks
    for (n + 0.1) / N: PyTorch then maps through that factor. Bound: float32 rounding of at most
    64 weighted terms (taps x 2 passes) of the largest input."""
    old = (5, 7)
    grid = torch.randn(1, old[0] * old[1], 8)
    tol = 64 * torch.finfo(torch.float32).eps * grid.abs().max()
    for name, offset, antialias in (('timm', 0.0, True), ('bicubic', 0.0, False), ('dinov2', 0.1, False)):
        mh, mw = (bicubic_matrix(o, n, o / (n + offset), antialias) for o, n in zip(old, new))
        expected = torch.einsum('ih,jw,hwc->ijc', mh, mw, grid.double().reshape(*old, 8)).reshape(1, -1, 8)
        assert (interpolate_pos_grid(grid, old, new, name).double() - expected).abs().max() <= tol, name
    results = [interpolate_pos_grid(grid, old, new, name) for name in sorted(POS_EMBED_INTERPOLATIONS)]
    assert all((a - b).abs().max() > 1e-3 for i, a in enumerate(results) for b in results[i + 1:])
    assert interpolate_pos_grid(grid, old, old, 'dinov2') is grid


def test_pos_embed_interp_option():
    with pytest.raises(ValueError, match=r"pos_embed_interp='area' is not one of \['bicubic', "
                                         r"'dinov2', 'timm'\] \(None follows the checkpoint's source\)"):
        ViTPyramid(**tiny('vit'), pos_embed_interp='area')
    with pytest.raises(ValueError, match=r"pos_embed_interp='bicubic' needs the trunk's own token "
                                         r"assembly, and .*VisionTransformerDistilled\) embeds its tokens"):
        ViTPyramid(model_name='deit_tiny_distilled_patch16_224', img_size=64, **TINY,
                   pos_embed_interp='bicubic')
    assert ViTPyramid(**tiny('eva02')).trunk.pos_embed_interp == 'timm'
    assert ViTPyramid(**tiny('eva02'), pos_embed_interp='bicubic').trunk.pos_embed_interp == 'bicubic'
    timm_rule = ViTPyramid(**tiny('vit'), pyramid='feature2pyramid').eval()
    plain = ViTPyramid(**tiny('vit'), pyramid='feature2pyramid', pos_embed_interp='bicubic').eval()
    plain.load_state_dict(timm_rule.state_dict())
    with torch.no_grad():
        native, other = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 80, 112)
        assert all(torch.equal(a, b) for a, b in zip(plain(native), timm_rule(native)))
        assert (plain(other)[2] - timm_rule(other)[2]).abs().max() > 1e-3
        copied = copy.deepcopy(plain)  # mmengine's EMA hooks deep-copy models
        assert copied.trunk.pos_embed_interp == 'bicubic'
        assert torch.equal(copied(other)[2], plain(other)[2])


# ---------------------------------------------------------------------------- safe reading
class Evil:
    """Unpickling it runs a command (``marker`` says which file the command creates)."""
    def __init__(self, marker, via_os=False):
        self.marker, self.via_os = str(marker), via_os

    def __reduce__(self):
        if self.via_os:
            return os.system, (f'touch {self.marker}',)
        return shutil.copyfile, (__file__, self.marker)


def test_placeholders_keep_tensors_and_run_nothing(tmp_path, default_torch_allowlist):
    marker = tmp_path / 'pwned'
    torch.save({'state_dict': {'w': torch.ones(2)}, 'evil': Evil(marker)}, tmp_path / 'evil.pth')
    with pytest.raises(CheckpointError, match=r"weights_only=True\). It pickles objects besides "
                                              r"tensors \(shutil.copyfile\): `vitadapter-convert .*evil.pth OUT"):
        read_checkpoint(tmp_path / 'evil.pth')
    ck = read_checkpoint(tmp_path / 'evil.pth', pickled_objects='placeholder')
    assert list(ck.state_dict) == ['w'] and ck.placeholders == ['shutil.copyfile']
    assert not marker.exists()
    # torch refuses globals of os/sys/posix outright, placeholders or not
    torch.save({'w': torch.ones(2), 'evil': Evil(marker, via_os=True)}, tmp_path / 'evil_os.pth')
    with pytest.raises(CheckpointError, match='posix is blocked'):
        read_checkpoint(tmp_path / 'evil_os.pth', pickled_objects='placeholder')
    assert not marker.exists()


def mmengine_segmentor_checkpoint(path, model: ViTPyramid) -> None:
    """What mmengine's runner saves for a trained segmentor: the weights beside metadata, the
    message hub (HistoryBuffer objects with numpy arrays) and the optimizer state."""
    import numpy as np
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('vitadapter-test-export')
    hub.update_scalar('train/loss', np.float64(0.5))
    state = {f'backbone.{k}': v for k, v in model.state_dict().items()}
    state['decode_head.conv_seg.weight'] = torch.zeros(3, 64, 1, 1)
    torch.save({'meta': {'epoch': 2, 'iter': 40, 'dataset_meta': {'classes': ('a', 'b', 'c')}},
                'state_dict': state, 'message_hub': hub.state_dict(),
                'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1, 'params': [0]}]}}, path)


@requires_mmseg
def test_export_trunk_of_a_trained_vitadapter_segmentor(tmp_path, default_torch_allowlist, capsys):
    trained = ViTPyramid(**tiny('vit'), out_indices=(0, 1, 2, 3), norm=True).eval()
    randomize(trained)
    mmengine_segmentor_checkpoint(tmp_path / 'iter_40.pth', trained)
    # (which globals: mmengine's HistoryBuffer and numpy's, or the rebuild function the training
    # runtime pickles HistoryBuffers with once it registered it)
    with pytest.raises(CheckpointError, match=r"pickles objects besides tensors \(.*history_buffer.*\): "
                                              r"`vitadapter-convert .*iter_40.pth OUT"):
        ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path / 'iter_40.pth'))
    # in this process, with torch's default allowlist: the command replaces what it refuses
    assert convert_main([str(tmp_path / 'iter_40.pth'), str(tmp_path / 'trunk.safetensors')]) == 0
    out = capsys.readouterr().out
    assert "timm layout, ViT under 'backbone.trunk.model.'" in out
    assert 'pickled objects replaced by inert placeholders (nothing was run): ' in out
    assert "4 blocks, width 64, patch 16x16, 17 positions (4x4 grid + class), class token, final norm" in out
    reused = ViTPyramid(**tiny('vit'), out_indices=(0, 1, 2, 3), norm=True,
                        checkpoint=str(tmp_path / 'trunk.safetensors')).eval()
    assert not reused.load_report.unexpected  # (nothing missing: the load is strict)
    assert trunk_equals(reused.trunk, trained.trunk.model.state_dict())
    x = torch.randn(1, 3, 80, 96)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(reused.trunk(x).maps, trained.trunk(x).maps))


def test_tool_writes_timm_files_that_timm_itself_loads(tmp_path):
    """HF Dinov2WithRegisters -> .pth in timm layout (through timm's DINOv2 conversion, run on a
    weightless shell): timm.create_model(pretrained=True, pretrained_cfg_overlay=dict(file=...))
    loads it strictly, and gives what the trunk loading the HF folder gives."""
    hf = build_hf('dinov2_reg')
    hf.save_pretrained(tmp_path / 'hf')
    assert convert_main([str(tmp_path / 'hf'), str(tmp_path / 'timm.pth'), '--to', 'timm']) == 0
    sd = torch.load(tmp_path / 'timm.pth', weights_only=True)
    assert 'reg_token' in sd and 'mask_token' not in sd and sd['pos_embed'].shape == (1, 16, 64)
    model = timm.create_model('vit_small_patch14_reg4_dinov2', img_size=56, **TINY, pretrained=True,
                              pretrained_cfg_overlay=dict(file=str(tmp_path / 'timm.pth'))).eval()
    trunk = TimmViTTrunk('vit_small_patch14_reg4_dinov2', img_size=56, **TINY, out_indices=(3,),
                         checkpoint=str(tmp_path / 'hf')).eval()
    x = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        ref = model.forward_intermediates(x, indices=[3], intermediates_only=True)[0]
        assert torch.equal(trunk(x).maps[0], ref)
    assert convert_main([str(tmp_path / 'hf' / 'config.json'), str(tmp_path / 'x.pth')]) == 1
