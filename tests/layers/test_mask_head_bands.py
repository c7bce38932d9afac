"""EoMT's mask head without gradients on a CPU: the last scale block and the mask product run a band
of rows at a time (vitadapter.layers.mask_head), with the values of the whole map."""
import pytest
import torch

import vitadapter.layers.mask_head as mask_head
from vitadapter.layers import MaskClassificationHead


def _plain(head, queries, patch_map):
    """The head's mask logits as the modules compose, whole maps."""
    pixels = patch_map
    for block in head.upscale:
        pixels = block.norm(block.conv2(block.act(block.conv1(pixels))))
    return torch.einsum('bqc,bchw->bqhw', head.mask_head(queries), pixels)


def _head(dim, patch, dtype=torch.float64):
    torch.manual_seed(0)
    head = MaskClassificationHead(dim, 3, patch).to(dtype)
    for p in head.parameters():  # norms away from weight 1 / bias 0
        torch.nn.init.normal_(p, 0.3, 0.5)
    return head


@pytest.fixture
def band_rows(monkeypatch):
    """Bands of ``rows`` input rows (the byte budget out of the way)."""
    def set_rows(rows):
        monkeypatch.setattr(mask_head, 'BAND_BYTES', 1)
        monkeypatch.setattr(mask_head, 'MIN_BAND_ROWS', rows)
    return set_rows


@pytest.mark.parametrize('patch,grid', [((16, 16), (5, 7)), ((14, 14), (9, 4)), ((16, 16), (1, 1))])
@pytest.mark.parametrize('rows', [1, 2, 100])
def test_banded_mask_logits_equal_the_whole_map(band_rows, patch, grid, rows):
    """float64, bands of 1 row (every band's neighbour rows recomputed), 2 (the last band short)
    and the whole image; two scale blocks (patch 16) and one (patch 14)."""
    band_rows(rows)
    head = _head(8, patch)
    queries = torch.randn(3, 4, 8, dtype=torch.float64)
    # channels-last, as the patch map comes from the tokens
    patch_map = torch.randn(3, grid[0] * grid[1], 8, dtype=torch.float64).transpose(1, 2).reshape(3, 8, *grid)
    with torch.no_grad():
        assert mask_head.runs_banded(head, queries, patch_map)
        ours, classes = head(queries, patch_map)
        theirs = _plain(head, queries, patch_map)
    assert ours.shape == theirs.shape and classes.shape == (3, 4, 4)
    assert ours.permute(0, 2, 3, 1).is_contiguous()  # queries innermost, as the whole-map product
    # float64; each logit is a few hundred operations deep (two blocks of 8-term sums, a 9-term
    # depth-wise sum, an 8-channel norm, an 8-term product), each within eps relative of values
    # O(1-10): rounding is ~1e-13, 1e-10 far above it and far below a wrong row (O(1))
    assert (ours - theirs).abs().max() <= 1e-10 * (1 + theirs.abs().max())


def test_bands_bound_what_the_last_block_sees(band_rows):
    """Each call of the last scale block gets its band plus at most one neighbour row either side;
    every image and every band of it goes through it once."""
    band_rows(2)
    head = _head(8, (16, 16), torch.float32)
    seen = []
    head.upscale[-1].register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    queries, patch_map = torch.randn(2, 4, 8), torch.randn(2, 8, 3, 5)
    with torch.no_grad():
        head(queries, patch_map)
    # the first block doubles the map to 6 x 10; bands of 2 rows: [0, 2) [2, 4) [4, 6), each with
    # its neighbours: rows [0, 3) [1, 5) [3, 6)
    assert seen == [(1, 8, 3, 10), (1, 8, 4, 10), (1, 8, 3, 10)] * 2


def test_the_default_band_stays_below_glibcs_mmap_threshold():
    """ViT-L's width at 1024x1024 (the Cityscapes config): the band's largest map, float32."""
    dim, width = 1024, 1024 // 16 * 2  # the last block's input: the map at stride 8
    row_bytes = dim * 2 * (2 * width) * 4
    rows = max(mask_head.MIN_BAND_ROWS, mask_head.BAND_BYTES // row_bytes)
    assert (rows + 2) * row_bytes < 32 << 20


def test_whole_maps_while_anything_needs_gradients_or_off_the_cpu():
    head = _head(8, (16, 16), torch.float32)
    queries, patch_map = torch.randn(1, 4, 8), torch.randn(1, 8, 2, 2)
    assert not mask_head.runs_banded(head, queries, patch_map)  # the parameters need gradients
    with torch.no_grad():
        assert mask_head.runs_banded(head, queries, patch_map)
        assert not mask_head.runs_banded(head, queries, patch_map.to('meta'))
        assert not mask_head.runs_banded(head, queries, patch_map[:0])  # an empty batch
    head.requires_grad_(False)
    assert mask_head.runs_banded(head, queries, patch_map)
    assert not mask_head.runs_banded(head, queries.requires_grad_(), patch_map)
    assert not mask_head.runs_banded(head, queries.detach(), patch_map.requires_grad_())
    head.mask_head.requires_grad_(True)  # a frozen upscaler, a trainable query MLP: whole maps
    assert not mask_head.runs_banded(head, queries.detach(), patch_map.detach())


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_banded_inference_under_autocast_is_as_accurate_as_the_whole_map(band_rows, dtype):
    """Autocast inference: the banded logits are as close to float64's as the whole map's under the
    same autocast (within 2x, plus one unit of the dtype's rounding)."""
    band_rows(2)
    head = _head(16, (16, 16), torch.float32)
    queries, patch_map = torch.randn(2, 4, 16), torch.randn(2, 16, 5, 3)
    with torch.no_grad():
        reference = _plain(head.double(), queries.double(), patch_map.double())
        head.float()
        with torch.autocast('cpu', dtype=dtype):
            banded = head(queries, patch_map)[0].double()
            whole = _plain(head, queries, patch_map).double()
    scale = reference.abs().max()
    err_banded, err_whole = (banded - reference).abs().max(), (whole - reference).abs().max()
    assert err_banded <= 2 * err_whole + torch.finfo(dtype).eps * scale, (err_banded, err_whole)
