"""tools/benchmark.py (through its entry point): the ViTAdapter variants, the train-step mode and
the memory measurement, next to the variants and CLI it had before."""
import json
import os
import sys

import pytest
import torch

from vitadapter import TimmViTTrunk, ViTAdapter

from conftest import ROOT, saved_by_autograd

sys.path.insert(0, os.path.join(ROOT, 'tools'))

import benchmark  # noqa: E402


@pytest.mark.slow
def test_train_step_and_peak_memory_of_vit_adapter_vs_vit_pyramid(tmp_path, capsys):
    out = tmp_path / 'result.json'
    benchmark.main(['--model', 'vit_tiny_patch16_224', '--size', '64', '48', '--variants', 'simple',
                    'adapter', '--mode', 'train', '--memory', '--repeats', '1', '--warmup', '0',
                    '--threads', '1', '--json', str(out)])
    result = json.loads(out.read_text())
    assert result['mode'] == 'train' and list(result['seconds']) == ['simple', 'adapter']
    # ratios to the first variant asked for (the same float division: exactly equal)
    for value, ratio in (('seconds', 'ratio'), ('peak_mib', 'peak_ratio'), ('call_mib', 'call_ratio')):
        assert result[ratio] == {v: result[value][v] / result[value]['simple'] for v in ('simple', 'adapter')}
    assert set(result['seconds']) == set(result['peak_mib']) == {'simple', 'adapter'}
    assert all(v > 0 for v in result['peak_mib'].values()) and all(v > 0 for v in result['call_mib'].values())
    # what the adapter stores for the backward pass, counted (no process memory read): at least
    # what its ViT-Ti blocks and its spatial prior each store alone, and the interactions on top
    x = torch.randn(1, 3, 64, 48)
    model = ViTAdapter(arch='tiny', img_size=64).train()
    adapter = saved_by_autograd(model, x)[1]
    trunk = saved_by_autograd(TimmViTTrunk('vit_tiny_patch16_224', img_size=64).train(), x)[1]
    prior = saved_by_autograd(model.spm, x)[1]
    assert adapter > trunk + prior
    table = capsys.readouterr().out
    assert 'mode train' in table and 'peak MiB' in table and table.count('adapter') == 1


def test_the_earlier_forward_variants_still_run(capsys):
    benchmark.main(['--model', 'vit_tiny_patch16_224', '--size', '32', '32', '--repeats', '1',
                    '--warmup', '0', '--threads', '1'])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith('machine: ') and 'median of 1' in lines[1]
    assert [line.split()[0] for line in lines[3:]] == ['trunk', 'feature2pyramid', 'simple']
