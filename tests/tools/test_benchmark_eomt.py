"""tools/benchmark.py's EoMT variants (tools/benchmarking: eomt, base_models, eomt_figures): EoMT
beside the trunk (with the FLOP ratio), the ADE20K segmentors of the base model configs on the
trunk, forward and train, ``--memory``, and the ``--eomt-figures`` preset.

Everything runs on ViT-Ti (12 blocks, or the 6 of the CamVid EoMT config) at 64x64, one thread."""
import json
import os
import sys

import pytest
import torch

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, 'tools'))

import benchmarking.runner as runner  # noqa: E402
from benchmarking.cases import build_case  # noqa: E402
from benchmarking.cli import main, parse_args  # noqa: E402
from benchmarking.settings import Setting  # noqa: E402

TINY = ['--model', 'vit_tiny_patch16_224', '--size', '64', '64', '--repeats', '1', '--warmup', '0',
        '--threads', '1']
EOMT_CAMVID = os.path.join(ROOT, 'configs', 'eomt', 'eomt_vit-t16-scratch_1xb8-1000it_camvid-176x176.py')
SEGMENTORS = ['uper-segmentor', 'm2f-segmentor', 'eomt-segmentor']


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run(tmp_path, argv) -> dict:
    out = tmp_path / 'r.json'
    main(argv + ['--json', str(out)])
    return json.loads(out.read_text())


def assert_quotients(result: dict, baseline: str, key: str) -> None:
    """Every ratio of ``key`` is the variant's value over the first variant's, the baseline (the
    same float division: exactly equal; the FLOP ratio divides FLOPs, the column GFLOP)."""
    values = result[key]
    ratios = result[{'seconds': 'ratio', 'gflop': 'flop_ratio'}.get(key, key.replace('_mib', '_ratio'))]
    assert list(values)[0] == baseline and list(ratios) == list(values)
    for label, ratio in ratios.items():
        assert ratio == pytest.approx(values[label] / values[baseline], rel=1e-12 if key == 'gflop' else 0)


def eomt_head_flops(d: int, q: int, k: int, grid: int, meet: bool) -> dict:
    """Forward FLOPs of one EoMT prediction on a (grid x grid) patch map, patch 16 (two scale
    blocks: stride 4), and of meeting class and mask logits there."""
    s1, s2 = 2 * grid, 4 * grid  # the scale blocks' outputs
    parts = dict(class_head=2 * q * d * (k + 1), mask_mlp=3 * 2 * q * d * d,
                 scale_blocks=(2 * grid ** 2 * d * d * 4 + 2 * s1 ** 2 * d * 9     # 2x2 deconv, 3x3 depthwise
                               + 2 * s1 ** 2 * d * d * 4 + 2 * s2 ** 2 * d * 9),
                 mask_einsum=2 * q * d * s2 ** 2)  # 2 * B * Q * D * (H/4) * (W/4), B = 1
    if meet:
        parts['meeting'] = 2 * q * k * s2 ** 2  # class probabilities x mask sigmoids at stride 4
    return parts


def test_eomt_beside_the_trunk_forward_counts_the_query_blocks_and_the_head(tmp_path, capsys):
    result = run(tmp_path, TINY + ['--variants', 'trunk', 'eomt'])
    assert_quotients(result, 'trunk', 'seconds')
    assert_quotients(result, 'trunk', 'gflop')
    # ViT-Ti at 64x64: 16 patches + the class token; 100 queries join the last 4 of 12 blocks
    d, tokens, q, k = 192, 17, 100, 150
    parts = dict(query_tokens=4 * 2 * q * 12 * d * d,  # qkv, projection, MLP (12 D^2 MACs per token)
                 query_attention=4 * 4 * d * ((tokens + q) ** 2 - tokens ** 2),  # Q K^T, P V: 2 T^2 D each
                 **eomt_head_flops(d, q, k, grid=4, meet=True))
    extra = (result['gflop']['eomt'] - result['gflop']['trunk']) * 1e9
    assert extra >= sum(parts.values()) - 1  # each named part (1 FLOP of float rounding)
    assert abs(extra - sum(parts.values())) <= 1e-3 * extra  # and nothing else of size
    # the queries and the head only: the trunk's parameters, plus the queries and the head's
    params = result['params']
    head = (d * (k + 1) + k + 1) + 3 * (d * d + d) + 2 * (4 * d * d + d + 9 * d + 2 * d)
    assert params['eomt'] - params['trunk'] == q * d + head + 2 * d  # + the final norm EoMT keeps
    table = capsys.readouterr().out.splitlines()
    header = ['variant', 'seconds', 'ratio', 'img/s', 'GFLOP', 'ratio', 'GFLOP/s', 'params', 'M']
    assert table[2].split() == header
    eomt_line = table[4].split()
    assert eomt_line[0] == 'eomt' and float(eomt_line[5]) == round(result['flop_ratio']['eomt'], 2)


def test_eomt_trains_every_prediction_with_masked_attention(tmp_path):
    result = run(tmp_path, TINY + ['--variants', 'trunk', 'eomt', '--mode', 'train'])
    assert_quotients(result, 'trunk', 'seconds')
    assert_quotients(result, 'trunk', 'gflop')
    d, tokens, q, k = 192, 17, 100, 150
    head = sum(eomt_head_flops(d, q, k, grid=4, meet=False).values())
    queries = 4 * 2 * q * 12 * d * d + 4 * 4 * d * ((tokens + q) ** 2 - tokens ** 2)
    # 5 predictions (before each of the 4 query blocks and the final one), forward and backward
    # (every product costs its forward twice more at least)
    extra = (result['gflop']['eomt'] - result['gflop']['trunk']) * 1e9
    assert extra >= 3 * (queries + 5 * head)
    # a training step's mask probabilities: --eomt-mask-prob (default 1), the segmentor told its
    # iteration; inference: 0 (annealing done)
    for mode, prob, expected in (('train', None, 1.0), ('train', '0.25', 0.25), ('forward', '0.25', 0.0)):
        args = parse_args(TINY + ['--mode', mode] + (['--eomt-mask-prob', prob] if prob else []))
        for variant in ('eomt', 'eomt-segmentor'):
            model = build_case(args, Setting(variant, 'fp32', False), (64, 64)).model
            assert model.network.attn_mask_probs.tolist() == [expected] * 4, (variant, mode)
            if variant == 'eomt-segmentor':
                assert model.iteration == (0 if mode == 'train' else None)


def test_segmentors_of_the_base_configs_forward_on_the_same_trunk(tmp_path):
    result = run(tmp_path, TINY + ['--variants', *SEGMENTORS, 'eomt', '--segmentor-forward', 'predict'])
    assert_quotients(result, 'uper-segmentor', 'seconds')
    assert_quotients(result, 'uper-segmentor', 'gflop')
    # EoMT's whole inference is the eomt variant's semantic segmentation (the rest is not counted)
    assert result['gflop']['eomt-segmentor'] == result['gflop']['eomt']
    assert result['params']['eomt-segmentor'] == result['params']['eomt']
    # the pyramids and heads weigh more than EoMT's queries and head (UperNet's 512 channels)
    params = result['params']
    assert params['uper-segmentor'] > params['m2f-segmentor'] > 3 * params['eomt-segmentor']


def test_segmentors_train_with_their_losses(tmp_path):
    """UperNet (its BN needs two images) beside EoMT; Mask2Former trains in the test below."""
    result = run(tmp_path, TINY + ['--variants', 'uper-segmentor', 'eomt-segmentor', '--mode', 'train',
                                   '--batch', '2', '--label-classes', '2'])
    assert_quotients(result, 'uper-segmentor', 'seconds')
    assert_quotients(result, 'uper-segmentor', 'gflop')
    assert result['gflop']['eomt-segmentor'] < result['gflop']['uper-segmentor']
    assert [(r['mode'], r['batch']) for r in result['rows']] == [('train', 2)] * 2


@pytest.mark.slow
def test_the_training_memory_of_mask2former_and_eomt_is_measured(tmp_path):
    """The figure-4 pair, each measured in a fresh process (which sets EoMT up for training too:
    without ``set_iteration`` its training step would raise there)."""
    result = run(tmp_path, TINY + ['--variants', 'm2f-segmentor', 'eomt-segmentor', '--mode', 'train',
                                   '--label-classes', '2', '--memory', '--no-flops'])
    for key in ('seconds', 'peak_mib', 'call_mib'):
        assert_quotients(result, 'm2f-segmentor', key)
    assert all(v > 0 for key in ('peak_mib', 'call_mib') for v in result[key].values())
    # Mask2Former's pixel decoder and 9-layer decoder: more weights, gradients and AdamW state
    assert result['peak_mib']['eomt-segmentor'] < result['peak_mib']['m2f-segmentor']


def test_an_eomt_config_gives_the_trunk_and_its_own_segmentor(tmp_path):
    """An EoMTSegmentor config: its network's ViT is the trunk (6 blocks of ViT-Ti), its model the
    ``segmentor`` variant (50 queries in 2 blocks, 11 classes), set up for training as a run does."""
    argv = ['--config', EOMT_CAMVID] + TINY[2:]
    result = run(tmp_path, argv + ['--variants', 'trunk', 'eomt', 'segmentor', '--mode', 'train',
                                   '--batch', '2', '--label-classes', '3'])
    d = 192
    params = result['params']
    assert params['trunk'] == 6 * 12 * d * d + 6 * 13 * d + 3 * 16 * 16 * d + d + d + 17 * d  # 6 blocks
    # ADE20K's queries and classes vs the config's
    assert params['eomt'] - params['segmentor'] == (100 - 50) * d + (150 - 11) * (d + 1)
    assert_quotients(result, 'trunk', 'seconds')


def test_eomt_figures_defaults_and_refusals(capsys):
    args = parse_args(['--eomt-figures'])
    assert (args.model, args.config, args.size, args.batch, args.label_classes, args.eomt_mask_prob,
            args.flops) == (None, None, [(512, 512)], 2, 10, 1.0, True)
    for extra in (['--variants', 'eomt'], ['--mode', 'train'], ['--no-flops'], ['--frozen-memory']):
        with pytest.raises(SystemExit):
            parse_args(['--eomt-figures'] + extra)
        assert f"drop {extra[0]}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(['--eomt-mask-prob', '1.5'])


@pytest.mark.slow
def test_eomt_figures_runs_the_three_pairs_and_prints_the_figures(tmp_path, monkeypatch, capsys):
    """The preset on ViT-Ti: its runs, tables and figures (memory read from a stand-in: the
    measurement itself is the test above's)."""
    peaks = {'m2f-segmentor': (400.0, 100.0), 'eomt-segmentor': (200.0, 40.0)}
    monkeypatch.setattr(runner, 'peak_memory_mib', lambda args, setting, size: peaks[setting.variant])
    result = run(tmp_path, ['--eomt-figures'] + TINY + ['--label-classes', '2'])
    rows = result['rows']
    trunk, uper, m2f = 'inference vs trunk', 'inference vs UperNet', 'training vs Mask2Former'
    assert [(r['run'], r['variant'], r['mode']) for r in rows] == [
        (trunk, 'trunk', 'forward'), (trunk, 'eomt', 'forward'),
        (uper, 'uper-segmentor', 'forward'), (uper, 'eomt-segmentor', 'forward'),
        (m2f, 'm2f-segmentor', 'train'), (m2f, 'eomt-segmentor', 'train')]
    assert {r['batch'] for r in rows} == {2}
    assert {r['model'] for r in rows} == {'vit_tiny_patch16_224'}
    eomt, uper, m2f = rows[1], rows[3], rows[5]
    figures = result['figures']
    assert [(f['figure'], f['pair'], f['value']) for f in figures] == [
        (1, 'eomt / trunk', eomt['ratio']), (2, 'eomt-segmentor / uper-segmentor', uper['ratio']),
        (3, 'eomt-segmentor / m2f-segmentor', m2f['ratio']), (4, 'eomt-segmentor / m2f-segmentor', 0.5)]
    assert figures[0]['time_per_flop'] == eomt['ratio'] / eomt['flop_ratio']
    assert all(f['target'] is None and f['met'] is None for f in figures)  # targets: ViT-S and ViT-B
    assert 'peak_mib' not in rows[1] and rows[5]['peak_ratio'] == 0.5
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith('machine: ') and sum(line.startswith('vit_tiny') for line in printed) == 3
    lines = printed[printed.index('EoMT figures (value, target):') + 1:]
    assert [line.split('.')[0].strip() for line in lines] == ['1', '2', '3', '4']
    assert f"FLOP ratio {eomt['flop_ratio']:.2f}" in lines[0] and '0.50 (no target' in lines[3]


def test_eomt_figures_targets_are_vit_s_and_vit_b():
    from benchmarking.eomt_figures import figure_lines, figures_of
    row = dict(run='inference vs trunk', variant='eomt', model='vit_base_patch16_224', height=512,
               width=512, ratio=1.3, flop_ratio=1.25)
    (fig,) = figures_of([row])
    assert (fig['target'], fig['met'], fig['time_per_flop_met']) == (1.2, False, True)
    assert 'target <= 1.2: MISSED' in figure_lines([fig])[1]
    (fig,) = figures_of([dict(row, model='vit_small_patch16_224', ratio=1.2, flop_ratio=1.0)])
    assert (fig['target'], fig['met'], fig['time_per_flop_met']) == (1.25, True, False)
