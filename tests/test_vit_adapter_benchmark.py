"""tools/benchmark.py (through its entry point): the ViTAdapter variants, the train-step mode and
the memory measurement, next to the variants and CLI it had before."""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))

import benchmark  # noqa: E402


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
    # ViT-Adapter-T adds ~2.5M parameters (weights, gradients, AdamW moments) to ViT-Ti's 5.5M
    assert result['peak_mib']['adapter'] > result['peak_mib']['simple'] + 20
    assert all(v > 0 for v in result['call_mib'].values())
    table = capsys.readouterr().out
    assert 'mode train' in table and 'peak MiB' in table and table.count('adapter') == 1


def test_the_earlier_forward_variants_still_run(capsys):
    benchmark.main(['--model', 'vit_tiny_patch16_224', '--size', '32', '32', '--repeats', '1',
                    '--warmup', '0', '--threads', '1'])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith('machine: ') and 'median of 1' in lines[1]
    assert [line.split()[0] for line in lines[3:]] == ['trunk', 'feature2pyramid', 'simple']
