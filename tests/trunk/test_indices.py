"""Which blocks a trunk returns: timm's out_indices convention, and the default."""
import pytest

from vitadapter import TimmViTTrunk
from vitadapter.trunk.indices import evenly_spaced_blocks, resolve_out_indices

from conftest import tiny


@pytest.mark.parametrize('num_blocks,count,expected', [
    (12, 4, [2, 5, 8, 11]), (24, 4, [5, 11, 17, 23]), (6, 4, [0, 2, 3, 5]), (4, 4, [0, 1, 2, 3]),
    (3, 4, [0, 1, 2]), (2, 4, [0, 1]), (1, 4, [0]), (12, 1, [11])])
def test_default_blocks_are_evenly_spaced_end_with_the_last_and_exist(num_blocks, count, expected):
    blocks = evenly_spaced_blocks(num_blocks, count)
    assert blocks == expected and blocks == sorted(set(blocks)) and 0 <= blocks[0] and blocks[-1] == num_blocks - 1


def test_timm_convention():
    assert resolve_out_indices(4, 12) == [8, 9, 10, 11]  # an int: the last N
    assert resolve_out_indices((2, -1), 12) == [2, 11]
    assert resolve_out_indices(None, 2) == [0, 1]


def test_a_shallow_trunk_returns_its_own_blocks_in_order():
    trunk = TimmViTTrunk(**{**tiny('vit'), 'depth': 2})
    assert list(trunk.block_indices) == [0, 1]
