"""Local checkpoints load (with a compact report); bad input fails with a clear message."""
import collections

import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.models import register_model

from vitadapter import CheckpointError, ViTPyramid

from conftest import TINY, tiny


@pytest.fixture
def donor():
    """A tiny timm ViT with its classifier, standing in for downloaded weights."""
    return timm.create_model('vit_base_patch16_224', img_size=64, num_classes=10, **TINY).eval()


def trunk_matches(model: ViTPyramid, donor) -> bool:
    own = model.trunk.model.state_dict()
    return all(torch.equal(v, donor.state_dict()[k]) for k, v in own.items())


@pytest.mark.parametrize('layout', ['plain.pth', 'wrapped.pth', 'ddp.pth', 'weights.safetensors'])
def test_checkpoint_layouts_load(tmp_path, donor, layout):
    sd = donor.state_dict()
    path = tmp_path / layout
    if layout == 'plain.pth':
        torch.save(sd, path)
    elif layout == 'wrapped.pth':
        torch.save({'state_dict': sd, 'meta': {'epoch': 3}}, path)
    elif layout == 'ddp.pth':
        torch.save({'model': collections.OrderedDict(('module.' + k, v) for k, v in sd.items())}, path)
    else:
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    model = ViTPyramid(**tiny('vit'), checkpoint=str(path))
    assert trunk_matches(model, donor)
    report = model.load_report
    assert report.loaded == len(model.trunk.model.state_dict()) + 2  # + final norm, pruned after loading
    assert sorted(report.ignored) == ['head.bias', 'head.weight'] and not report.missing and not report.unexpected
    text = str(report)
    assert text.startswith(f'loaded {report.loaded} tensors from {path}')
    assert 'ignored (classifier head): 2' in text


def test_position_embeddings_are_resized_on_load(tmp_path, donor):
    torch.save(donor.state_dict(), tmp_path / 'w.pth')
    model = ViTPyramid(**tiny('vit', img_size=96), checkpoint=str(tmp_path / 'w.pth'))
    assert model.load_report.resized == ['pos_embed']
    assert model.trunk.model.pos_embed.shape == (1, 1 + 36, 64)


def test_missing_keys_are_reported_grouped_and_strict_refuses(tmp_path, donor):
    sd = {k: v for k, v in donor.state_dict().items() if '.mlp.' not in k}
    torch.save(sd, tmp_path / 'partial.pth')
    with pytest.raises(CheckpointError, match=r"partial.pth leaves 16 of the model's tensors as initialised: "
                                              r"blocks.\*.mlp.fc1.weight \(x4\).* read as the timm layout and "
                                              r"holds 40 tensors: .*timm's vit_base_patch16_224 .*strict_load=False"
                       ) as err:
        ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path / 'partial.pth'))  # strict by default
    assert len(err.value.report.missing) == 16 and err.value.report.loaded == len(sd) - 2
    model = ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path / 'partial.pth'), strict_load=False)
    text = str(model.load_report)
    assert 'missing (left as initialised): 16: blocks.*.mlp.fc1.weight (x4)' in text
    assert model.load_report.loaded == len(sd) - 2  # all but the classifier head


def test_what_the_trunk_does_not_use_may_be_absent(tmp_path):
    """Strict loading asks only for what the trunk runs: not the classifier's pooling (SigLIP's
    attention pool), not blocks after the last output, not the final norm unless norm=True."""
    donor = timm.create_model(**tiny('siglip'), num_classes=0)
    sd = {k: v for k, v in donor.state_dict().items()
          if not k.startswith(('attn_pool.', 'blocks.3.', 'norm.'))}
    torch.save(sd, tmp_path / 'w.pth')
    model = ViTPyramid(**tiny('siglip'), out_indices=(2,), checkpoint=str(tmp_path / 'w.pth'))
    assert model.load_report.loaded == len(sd)
    assert {k.split('.')[0] for k in model.load_report.missing} == {'attn_pool', 'blocks', 'norm'}
    assert all(torch.equal(v, sd[k]) for k, v in model.trunk.model.state_dict().items())
    with pytest.raises(CheckpointError, match=r"leaves 12 of the model's tensors as initialised: "
                                              r"blocks.\*.norm1.weight, "):
        ViTPyramid(**tiny('siglip'), checkpoint=str(tmp_path / 'w.pth'))  # block 3 is used
    with pytest.raises(CheckpointError, match=r"leaves 2 of the model's tensors as initialised: norm.weight, "
                                              r"norm.bias\."):
        ViTPyramid(**tiny('siglip'), out_indices=(2,), norm=True, checkpoint=str(tmp_path / 'w.pth'))


def test_checkpoint_for_another_size_is_refused(tmp_path):
    other = timm.create_model('vit_base_patch16_224', img_size=64, depth=4, embed_dim=96, num_heads=2)
    torch.save(other.state_dict(), tmp_path / 'other.pth')
    with pytest.raises(CheckpointError, match='another model size.*shape mismatches'):
        ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path / 'other.pth'))


def test_missing_checkpoint_file():
    with pytest.raises(FileNotFoundError, match="checkpoint file '/no/such/weights.pth' does not exist"):
        ViTPyramid(**tiny('vit'), checkpoint='/no/such/weights.pth')


def test_unreadable_checkpoint(tmp_path):
    (tmp_path / 'junk.pth').write_bytes(b'this is not a checkpoint')
    with pytest.raises(CheckpointError, match="could not read checkpoint .*junk.pth"):
        ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path / 'junk.pth'))
    (tmp_path / 'junk.safetensors').write_bytes(b'\x00' * 16)
    with pytest.raises(CheckpointError, match="could not read checkpoint .*junk.safetensors"):
        ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path / 'junk.safetensors'))


class NotATensor:
    pass


def test_pickled_objects_are_not_executed(tmp_path, donor):
    torch.save({'state_dict': donor.state_dict(), 'hook': NotATensor()}, tmp_path / 'pickled.pth')
    with pytest.raises(CheckpointError, match='weights_only=True'):
        ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path / 'pickled.pth'))


def test_checkpoint_without_tensors(tmp_path):
    torch.save({'epoch': 3, 'meta': {'a': 1}}, tmp_path / 'meta.pth')
    with pytest.raises(CheckpointError, match='not a state dict'):
        ViTPyramid(**tiny('vit'), checkpoint=str(tmp_path / 'meta.pth'))


def test_unknown_model_name_suggests_close_matches():
    with pytest.raises(ValueError, match=r"unknown timm model 'vit_base_patch16_244'.*did you mean "
                                         r".*vit_base_patch16_224"):
        ViTPyramid('vit_base_patch16_244')
    with pytest.raises(ValueError, match=r"did you mean .*vit_small_patch14_dinov2"):
        ViTPyramid('vit_small_patch14_dinov')


@pytest.mark.parametrize('out_indices,message', [
    ((0, 4), 'block 4 is out of range; the model has 4 blocks'),
    ((-5,), 'block -5 is out of range'),
    ((1, 1, 2, 3), 'names the same block twice'),
    ((1, -3, 2, 3), r'names the same block twice \(as absolute indices: \[1, 1, 2, 3\]\)'),
    ((3, 2, 1, 0), 'from shallow to deep'),
    (5, 'asks for the last 5 blocks but the model has 4'),
    (0, 'asks for the last 0 blocks'),
    ((), 'out_indices is empty'),
])
def test_bad_out_indices(out_indices, message):
    with pytest.raises(ValueError, match=message):
        ViTPyramid(**tiny('vit'), out_indices=out_indices)


def test_out_indices_type():
    with pytest.raises(TypeError, match='must hold ints'):
        ViTPyramid(**tiny('vit'), out_indices=(0.5, 1, 2, 3))


class LegacyViT(torch.nn.Module):
    """A ViT from before forward_intermediates (every timm 1.0.31 model has it, so we make one)."""

    def __init__(self, **kwargs):
        super().__init__()
        self.patch_embed = torch.nn.Conv2d(3, 8, 16, 16)
        self.blocks = torch.nn.ModuleList([torch.nn.Identity()])


@register_model
def legacy_vit_without_intermediates(pretrained=False, **kwargs):
    return LegacyViT(**kwargs)


def test_model_without_forward_intermediates():
    with pytest.raises(ValueError, match="'legacy_vit_without_intermediates' .LegacyViT. has no "
                                         "forward_intermediates"):
        ViTPyramid('legacy_vit_without_intermediates')


def test_hierarchical_model_is_refused():
    with pytest.raises(ValueError, match='not a plain Vision Transformer.*features_only'):
        ViTPyramid('resnet18')


def test_wrong_input_channels():
    model = ViTPyramid(**tiny('vit'))
    with pytest.raises(ValueError, match=r'expected images \(B, 3, H, W\), got \(1, 4, 64, 64\)'):
        model(torch.randn(1, 4, 64, 64))


def test_bad_pyramid_options():
    with pytest.raises(ValueError, match="unknown pyramid style 'fpn'"):
        ViTPyramid(**tiny('vit'), pyramid='fpn')
    with pytest.raises(ValueError, match="keeps the trunk's 64 channels"):
        ViTPyramid(**tiny('vit'), pyramid='feature2pyramid', out_channels=256)
    with pytest.raises(ValueError, match="unknown norm type 'LayerNorm3d'"):
        ViTPyramid(**tiny('vit'), pyramid='simple', norm_cfg=dict(type='LayerNorm3d'))
    with pytest.raises(ValueError, match='stride must be a power of two'):
        ViTPyramid(**tiny('vit'), stride=14)
