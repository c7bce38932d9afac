"""tools/benchmark.py (the tools/benchmarking package): FLOP counting, baselines, config mode,
options, the machine record and output files.

Everything runs on ViT-Ti (or 4 blocks of it) at 32-256 pixels, one thread."""
import copy
import csv
import json
import os
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from vitadapter import ViTPyramid

from conftest import ROOT, saved_by_autograd

sys.path.insert(0, os.path.join(ROOT, 'tools'))

from benchmarking.cli import main, parse_args  # noqa: E402
from benchmarking.flops import count_flops  # noqa: E402
from benchmarking.machine import (WATCHED_FLAGS, describe, isa_limits, machine_record,  # noqa: E402
                                  parse_cpuinfo)
from benchmarking.segmentors import segmentor_cfg  # noqa: E402

DEMO_CONFIG = os.path.join(ROOT, 'configs', 'demo', 'upernet_vit-t16_1xb8-400it_shapes-96x96.py')
FAST = ['--repeats', '1', '--warmup', '0', '--threads', '1']


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def assert_ratios_to(result: dict, baseline: str, key: str = 'seconds') -> None:
    """The baseline is the first variant asked for, and every ratio of ``key`` is the variant's value
    over the baseline's (the same float division, so exactly equal)."""
    values = result[key]
    ratios = result['ratio' if key == 'seconds' else key.replace('_mib', '_ratio')]
    assert list(values)[0] == baseline and list(ratios) == list(values)
    for label, ratio in ratios.items():
        assert ratio == values[label] / values[baseline], (label, ratio)


# ------------------------------------------------------------------------------------- FLOPs
def test_flops_of_linear_and_conv_layers_are_exact():
    linear, conv = nn.Linear(8, 16), nn.Conv2d(3, 4, 3, padding=1)
    deconv = nn.ConvTranspose2d(4, 2, kernel_size=2, stride=2)
    x, image = torch.randn(2, 8), torch.randn(1, 3, 10, 10)

    def forward():
        linear(x)
        deconv(conv(image))
    expected = (2 * 2 * 8 * 16            # (2, 8) @ (8, 16)
                + 2 * 100 * 4 * 3 * 9     # 3x3 conv: 100 output pixels, 4 x 3 x 9 MACs each
                + 2 * 100 * 4 * 2 * 4)    # 2x2 stride-2 deconv: 100 input pixels x 4 x 2 x 4 MACs
    assert count_flops(forward) == expected


def test_the_cpu_fused_attention_is_counted_forward_and_backward():
    b, h, n, d = 2, 3, 16, 8
    q, k, v = (torch.randn(b, h, n, d, requires_grad=True) for _ in range(3))
    qk_and_pv = 2 * (2 * b * h * n * n * d)  # Q K^T and P V
    assert count_flops(lambda: F.scaled_dot_product_attention(q, k, v)) == qk_and_pv
    train = count_flops(lambda: F.scaled_dot_product_attention(q, k, v).sum().backward())
    # backward (torch's formula for the fused kernels): recomputed scores, dP, dV, dQ, dK
    assert train == qk_and_pv + 5 * (2 * b * h * n * n * d)


def vit_forward_flops(tokens: int, patches: int, dim: int, depth: int, patch: int) -> int:
    """Analytic forward FLOPs of a plain ViT (MLP ratio 4): patch embedding, qkv + projection
    (4 C^2 per token), MLP (8 C^2 per token), attention (Q K^T and P V: 2 N^2 C)."""
    embed = 2 * patches * dim * 3 * patch * patch
    per_block = 2 * tokens * 12 * dim * dim + 2 * 2 * tokens * tokens * dim
    return embed + depth * per_block


@pytest.mark.parametrize('variant', ['trunk', 'mmseg-vit'])
def test_vit_flops_match_the_analytic_count(tmp_path, variant):
    out = tmp_path / 'r.json'
    main(['--model', 'vit_tiny_patch16_224', '--size', '64', '64', '--variants', variant,
                    '--json', str(out)] + FAST)
    counted = json.loads(out.read_text())['gflop'][variant] * 1e9
    expected = vit_forward_flops(tokens=17, patches=16, dim=192, depth=12, patch=16)
    assert abs(counted - expected) / expected < 0.01


# ------------------------------------------------------------------------------------- variants
def test_baselines_and_grad_checkpointing_in_one_table(tmp_path, capsys):
    out = tmp_path / 'r.json'
    variants = ['trunk', 'simple', 'simple-cp', 'trunk-f2p', 'trunk-mln', 'mmseg-f2p', 'mmseg-mln']
    rows = main(['--model', 'vit_tiny_patch16_224', '--size', '64', '64', '--mode', 'train',
                           '--variants', *variants, '--json', str(out)] + FAST)
    assert [r['label'] for r in rows] == variants
    result = json.loads(out.read_text())
    assert_ratios_to(result, 'trunk')
    assert all(s > 0 for s in result['seconds'].values())
    gflop, params = result['gflop'], result['params']
    # MultiLevelNeck adds a 3x3 C->C conv per level (the stride-4 one alone costs 2.3x ViT-Ti at 64 px)
    assert gflop['trunk-mln'] > 1.5 * gflop['trunk-f2p'] > 1.5 * gflop['trunk']
    # checkpointing recomputes the blocks: more FLOPs, same parameters
    assert gflop['simple-cp'] > 1.2 * gflop['simple'] and params['simple-cp'] == params['simple']
    # the same neck on timm's and mmseg's ViT: the same parameters up to the patch-embedding bias
    assert abs(params['trunk-f2p'] - params['mmseg-f2p']) == 192
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith('machine: ') and 'mode train' in table[1] and 'GFLOP' in table[2]
    assert len(table) == 3 + len(variants)


@pytest.mark.slow
def test_grad_checkpointing_lowers_the_memory_of_a_train_step(tmp_path):
    """The benchmark measures a checkpointed and a plain train step side by side; what they store
    for the backward pass is counted directly (the process's memory is not read by the test)."""
    out = tmp_path / 'r.json'
    main(['--model', 'vit_tiny_patch16_224', '--size', '64', '64', '--mode', 'train', '--variants',
          'simple', 'simple-cp', '--memory', '--no-flops', '--json', str(out)] + FAST)
    result = json.loads(out.read_text())
    assert set(result['call_mib']) == {'simple', 'simple-cp'} and all(v > 0 for v in result['call_mib'].values())
    x = torch.randn(2, 3, 128, 128)
    stored = {cp: saved_by_autograd(ViTPyramid('vit_tiny_patch16_224', img_size=128,
                                               grad_checkpointing=cp).train(), x)[1] for cp in (False, True)}
    # without checkpointing every one of the 12 blocks keeps its activations (~10 tensors of
    # (2, 65, 192) each); with it, only the blocks' inputs and the pyramid's level outputs
    assert stored[True] < 0.3 * stored[False]


def test_frozen_memory_defaults_and_refusal(capsys):
    args = parse_args(['--frozen-memory'])
    assert (args.mode, args.memory, args.model, args.batch, args.size) == \
        ('train', True, 'vit_small_patch16_dinov3', 2, [(512, 512)])
    assert args.variants == ['simple', 'simple-frozen', 'adapter', 'adapter-extractors']
    plain = parse_args([])
    assert (plain.mode, plain.memory, plain.batch) == ('forward', False, 1)
    with pytest.raises(SystemExit):
        parse_args(['--frozen-memory', '--mode', 'forward'])
    assert 'drop --mode forward' in capsys.readouterr().err


@pytest.mark.slow
def test_frozen_memory_compares_each_frozen_variant_with_its_fine_tuned_one(tmp_path, capsys):
    out = tmp_path / 'r.json'
    main(['--frozen-memory', '--model', 'vit_tiny_patch16_224', '--size', '64', '64', '--no-flops',
          '--json', str(out)] + FAST)
    result = json.loads(out.read_text())
    peak, call, trainable = result['peak_mib'], result['call_mib'], {
        r['label']: r['trainable'] for r in result['rows']}
    pairs = {'simple-frozen': 'simple', 'adapter-extractors': 'adapter'}
    assert set(result['peak_vs_finetuned']) == set(result['call_vs_finetuned']) == set(pairs)
    for frozen, tuned in pairs.items():  # the same float divisions: exactly equal
        assert result['peak_vs_finetuned'][frozen] == peak[frozen] / peak[tuned]
        assert result['call_vs_finetuned'][frozen] == call[frozen] / call[tuned]
    # the frozen variants train everything but the trunk (ViT-Ti's blocks up to the last one used)
    trunk = sum(p.numel() for p in ViTPyramid('vit_tiny_patch16_224', img_size=64).trunk.parameters())
    assert trainable['simple-frozen'] == trainable['simple'] - trunk
    assert result['params']['simple-frozen'] == result['params']['simple']
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith('machine: ') and 'mode train' in printed[1]
    lines = printed[printed.index('frozen vs fine-tuned (memory of a training step, frozen / fine-tuned):') + 1:]
    assert [line.split()[:3] for line in lines] == [['simple-frozen', '/', 'simple'],
                                                   ['adapter-extractors', '/', 'adapter']]


def test_config_mode_segmentors_train_with_real_losses(tmp_path, capsys):
    out = tmp_path / 'r.json'
    variants = ['trunk', 'backbone', 'segmentor', 'mmseg-f2p-segmentor', 'mmseg-mln-segmentor']
    main(['--config', DEMO_CONFIG, '--size', '64', '64', '--batch', '2', '--mode', 'train',
                    '--variants', *variants, '--json', str(out)] + FAST)
    result = json.loads(out.read_text())
    assert list(result['seconds']) == variants
    params = result['params']
    # the demo's ViT-Ti has 4 blocks; its segmentor adds UPerHead + FCN head
    assert params['trunk'] < params['backbone'] < params['segmentor'] < params['mmseg-f2p-segmentor']
    assert result['gflop']['segmentor'] > 1.5 * result['gflop']['backbone']  # + the heads' convolutions
    assert capsys.readouterr().out.splitlines()[1].startswith(DEMO_CONFIG)


def test_baselines_run_mmseg_heads_and_the_fast_head_saves_flops(tmp_path):
    args = parse_args(['--config', DEMO_CONFIG])
    heads = {v: segmentor_cfg(args, v, (128, 128))['decode_head']['type']
             for v in ('segmentor', 'stock-head-segmentor', 'mmseg-f2p-segmentor')}
    assert heads == {'segmentor': 'FastUPerHead', 'stock-head-segmentor': 'UPerHead',
                     'mmseg-f2p-segmentor': 'UPerHead'}
    out = tmp_path / 'r.json'
    # the low-resolution formulation forced ('auto' may take UPerHead's at this size, and the
    # FLOP column counts what runs); the stock head's variant drops the option
    main(['--config', DEMO_CONFIG, '--size', '128', '128', '--variants',
                    'stock-head-segmentor', 'segmentor', '--json', str(out),
          '--cfg-options', 'model.decode_head.fast_path=True'] + FAST)
    result = json.loads(out.read_text())
    assert result['params']['segmentor'] == result['params']['stock-head-segmentor']
    assert result['gflop']['segmentor'] < 0.8 * result['gflop']['stock-head-segmentor']


def test_flop_column_counts_the_formulation_auto_chose(tmp_path, monkeypatch, capsys):
    """FastUPerHead(fast_path='auto') decides at its first timed call; the FLOP column is counted
    after timing, so where the measurement picks UPerHead's formulation the row counts UPerHead's
    work (equal to the stock head's), not the low-resolution path's."""
    import vitadapter.layers.measured_choice as measured_choice
    monkeypatch.setattr(measured_choice, 'wall_seconds',
                        lambda fn, device: fn() or (2.0 if 'low_res' in repr(fn) else 1.0))
    from vitadapter.engine import FastUPerHead
    timed_call = FastUPerHead._timed_call

    def labelled(self, module, maps, size, low_res):
        call = timed_call(self, module, maps, size, low_res)

        class Call:  # a callable whose repr names the candidate, for the scripted clock above
            def __call__(self):
                call()

            def __repr__(self):
                return 'low_res' if low_res else 'uperhead'
        return Call()
    monkeypatch.setattr(FastUPerHead, '_timed_call', labelled)
    out = tmp_path / 'r.json'
    main(['--config', DEMO_CONFIG, '--size', '128', '128', '--variants', 'stock-head-segmentor',
          'segmentor', '--json', str(out), '--cfg-options', 'model.decode_head.fast_path=auto'] + FAST)
    result = json.loads(out.read_text())
    assert result['gflop']['segmentor'] == result['gflop']['stock-head-segmentor']
    # the row says what was chosen, and the table prints it
    chosen = {'decode_head.bottleneck': 'uperhead', 'decode_head.fpn_bottleneck': 'uperhead'}
    assert result['rows'][1]['measured_choices'] == chosen
    assert 'measured_choices' not in result['rows'][0]  # the stock head measures nothing
    assert ('segmentor: measured choice decode_head.bottleneck uperhead, decode_head.fpn_bottleneck '
            'uperhead') in capsys.readouterr().out


def test_config_mode_forward_tensor_and_predict(tmp_path):
    for kind in ('tensor', 'predict'):
        rows = main(['--config', DEMO_CONFIG, '--size', '64', '64', '--segmentor-forward', kind,
                               '--variants', 'segmentor', 'adapter-segmentor'] + FAST)
        assert [r['variant'] for r in rows] == ['segmentor', 'adapter-segmentor']
        assert rows[1]['params'] > rows[0]['params']


def test_a_segmentor_train_step_of_one_image_asks_for_two():
    with pytest.raises(ValueError, match='--batch 2'):
        main(['--config', DEMO_CONFIG, '--size', '64', '64', '--mode', 'train',
                        '--variants', 'segmentor', '--no-flops'] + FAST)


def test_segmentor_variants_need_a_config(capsys):
    with pytest.raises(SystemExit):
        main(['--variants', 'segmentor'])
    assert 'need --config' in capsys.readouterr().err


# ------------------------------------------------------------------------------------- options
def test_dtypes_channels_last_and_grad_checkpointing_flags(tmp_path):
    out = tmp_path / 'r.json'
    rows = main(['--model', 'vit_tiny_patch16_224', '--size', '64', '64', '--variants', 'simple',
                           'mmseg-f2p', '--dtype', 'fp32', 'bf16', '--channels-last', '--grad-checkpointing',
                           '--mode', 'train', '--no-flops', '--json', str(out)] + FAST)
    assert [r['label'] for r in rows] == ['simple[fp32]', 'simple[bf16]', 'mmseg-f2p[fp32]', 'mmseg-f2p[bf16]']
    assert all(r['channels_last'] and r['grad_checkpointing'] for r in rows)
    assert_ratios_to(json.loads(out.read_text()), 'simple[fp32]')


@pytest.mark.slow
def test_several_sizes_write_json_csv_and_plot(tmp_path, capsys):
    paths = {k: tmp_path / f'r.{k}' for k in ('json', 'csv', 'png')}
    main(['--model', 'vit_tiny_patch16_224', '--size', '64', '48', '--sizes', '96',
                    '--variants', 'trunk', 'simple', '--memory', '--json', str(paths['json']),
                    '--csv', str(paths['csv']), '--plot', str(paths['png'])] + FAST)
    result = json.loads(paths['json'].read_text())
    assert [(r['height'], r['width'], r['variant']) for r in result['rows']] == [
        (64, 48, 'trunk'), (64, 48, 'simple'), (96, 96, 'trunk'), (96, 96, 'simple')]
    assert result['size'] == [64, 48] and set(result['peak_mib']) == {'trunk', 'simple'}
    assert_ratios_to(result, 'trunk')
    assert_ratios_to(result, 'trunk', 'peak_mib')
    assert_ratios_to(result, 'trunk', 'call_mib')
    with open(paths['csv']) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and float(rows[3]['gflop']) > float(rows[1]['gflop']) > 0
    assert all(float(r['peak_mib']) > 0 and float(r['seconds']) > 0 for r in rows)
    # each size has its own baseline: the ratio of 96x96's simple is to 96x96's trunk
    assert float(rows[3]['ratio']) == float(rows[3]['seconds']) / float(rows[2]['seconds'])
    from PIL import Image
    with Image.open(paths['png']) as image:
        assert image.format == 'PNG' and image.size == (1500, 400)  # time, memory, GFLOP panels
    tables = capsys.readouterr().out
    assert tables.count('median of 1') == 2
    # the machine: printed once, first, and stored in the JSON (one thread, as asked)
    machine = result['machine']
    assert tables.splitlines()[0] == describe(machine) and tables.count('machine: ') == 1
    assert machine['threads'] == 1 and machine['torch'] == torch.__version__ and machine['cpu']
    if os.path.exists('/proc/cpuinfo'):
        assert list(machine['cpu_flags']) == list(WATCHED_FLAGS)


# ------------------------------------------------------------------------------------- machine
CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 avx512f amx_tile amx_bf16

processor\t: 1
model name\t: another CPU
flags\t\t: fpu
"""


def test_the_machine_record_reads_the_cpu_model_and_instruction_sets():
    assert parse_cpuinfo(CPUINFO) == ('Intel(R) Xeon(R) Platinum 8480+',
                                      {'fpu', 'sse2', 'avx2', 'avx512f', 'amx_tile', 'amx_bf16'})
    assert parse_cpuinfo('processor\t: 0\nFeatures\t: fp asimd\nCPU part\t: 0xd0c\n') == (None, None)
    record = dict(machine_record('cpu'), cpu='Xeon', logical_cpus=4,
                  cpu_flags={flag: flag in ('avx2', 'amx_bf16') for flag in WATCHED_FLAGS})
    line = describe(record)
    assert line.startswith('machine: Xeon, 4 logical CPUs, avx2 amx_bf16 (torch kernels: ')
    assert f"{torch.get_num_threads()} threads" in line
    none = describe(dict(record, cpu_flags={flag: False for flag in WATCHED_FLAGS}))
    assert 'none of avx2/avx512f' in none and 'instruction sets unknown' in describe(dict(record, cpu_flags=None))


def test_the_machine_line_names_the_instruction_sets_the_libraries_were_restricted_to():
    environ = dict(ATEN_CPU_CAPABILITY='avx2', MKL_ENABLE_INSTRUCTIONS='AVX2', ONEDNN_MAX_CPU_ISA='AVX2',
                   DNNL_MAX_CPU_ISA='', PATH='/bin')
    limits = isa_limits(environ)
    assert limits == dict(ATEN_CPU_CAPABILITY='avx2', MKL_ENABLE_INSTRUCTIONS='AVX2', ONEDNN_MAX_CPU_ISA='AVX2')
    record = dict(machine_record('cpu'), cpu='Xeon', logical_cpus=4, torch_cpu_capability='AVX2',
                  cpu_flags={flag: flag in ('avx2', 'avx512f') for flag in WATCHED_FLAGS}, isa_limits=limits)
    line = describe(record)
    assert ('avx2 avx512f (torch kernels: AVX2), libraries restricted to ATEN_CPU_CAPABILITY=avx2 '
            'MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2, torch ') in line
    assert 'restricted' not in describe(dict(record, isa_limits={}))
    assert isa_limits({}) == {}


def test_profile_prints_the_operators(capsys):
    main(['--model', 'vit_tiny_patch16_224', '--size', '32', '32', '--variants', 'simple',
                    '--profile', '5', '--no-flops'] + FAST)
    out = capsys.readouterr().out
    assert 'profile of simple at 32x32' in out and 'aten::' in out


# ------------------------------------------------------------------------------------- bf16, compile
def tiny_pyramid() -> ViTPyramid:
    return ViTPyramid('vit_tiny_patch16_224', depth=4, img_size=64).eval()


def test_bf16_autocast_matches_fp32():
    model, x = tiny_pyramid(), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        reference = model(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            half = model(x)
    # the transposed convolutions run in bf16; the residual stream (identity level) stays fp32
    assert half[0].dtype == torch.bfloat16 and half[2].dtype == torch.float32
    for ref, y in zip(reference, half):
        assert y.shape == ref.shape
        error = (y.float() - ref).abs().max() / ref.abs().max()
        assert error < 0.05, error


@pytest.mark.slow
def test_torch_compile_matches_eager(capsys):
    model, x = tiny_pyramid(), torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        exact = copy.deepcopy(model).double()(x.double())
        eager = model(x)
        compiled = torch.compile(model)(x)
    # eager and compiled (fused, reordered) float32 are both within float32 rounding of the exact
    # (float64) function: rounding errors of a sum of n random-sign terms grow like sqrt(n) * eps32
    # of its scale (eps32 = 2^-23); the longest reductions have 768 terms (patch embedding 3 x 16 x 16,
    # fc2 4 x 192); a level passes through at most 4 blocks of ~8 reducing operations and the neck's
    # <= 4, whose errors are added here, not averaged: 36 * sqrt(768) * eps32 = 1.2e-4 of the
    # level's scale max|exact|
    for ref, y, e in zip(eager, compiled, exact):
        assert y.shape == ref.shape == e.shape
        bound = 36 * 768 ** 0.5 * torch.finfo(torch.float32).eps * e.abs().max()
        assert (ref.double() - e).abs().max() <= bound
        assert (y.double() - e).abs().max() <= bound
    # and through the tool, compiled and eager timed side by side
    rows = main(['--config', DEMO_CONFIG, '--size', '48', '64', '--variants', 'trunk',
                           '--compile', 'both', '--repeats', '1', '--warmup', '1', '--threads', '1',
                           '--no-flops'])
    assert [r['label'] for r in rows] == ['trunk', 'trunk[compiled]']
    assert 'first s' in capsys.readouterr().out


def test_onnx_comparison_writes_its_json(tmp_path, capsys, monkeypatch):
    """--onnx --json: the comparison with the machine (the export and its parity: tests/export)."""
    import benchmarking.onnx
    measured = dict(config=DEMO_CONFIG, size=[64, 64], torch_s=0.02, onnxruntime_s=0.01, ratio=0.5,
                    max_rel_error=1e-7)
    monkeypatch.setattr(benchmarking.onnx, 'run_onnx_comparison', lambda args: dict(measured))
    path = tmp_path / 'onnx.json'
    main(['--config', DEMO_CONFIG, '--onnx', '--size', '64', '64', *FAST, '--json', str(path)])
    result = json.loads(path.read_text())
    assert result['machine']['logical_cpus'] >= 1 and result['onnx'] == measured
    with pytest.raises(SystemExit):
        parse_args(['--config', DEMO_CONFIG, '--onnx', '--csv', str(tmp_path / 'x.csv')])
    assert '--csv and --plot are for timing tables' in capsys.readouterr().err


# ------------------------------------------------------------------------------------- allocator
FAULTS = r'''
import resource, sys, torch
sys.path.insert(0, {tools!r})
if {keep}:
    from benchmarking.allocator import keep_freed_memory
    keep_freed_memory()
faults = []
for _ in range(16):  # a 64 MiB tensor made, filled and freed, as a call's large tensors are
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(16 * 2 ** 20).fill_(1.0)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(max(faults[-4:]), min(faults[-4:]))
'''


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason="glibc's mallopt (Linux)")
def test_keep_freed_memory_makes_large_tensors_reuse_the_freed_pages():
    """glibc by default maps every such tensor afresh (a page fault per 4 KiB page, each time);
    kept, the heap grows until the freed blocks fit (torch aligns them), then reuses them."""
    import subprocess
    tools = os.path.join(ROOT, 'tools')
    faults = {}
    for keep in (False, True):
        out = subprocess.run([sys.executable, '-c', FAULTS.format(tools=tools, keep=keep)],
                             capture_output=True, text=True, check=True).stdout.split()
        faults[keep] = int(out[-2]), int(out[-1])  # (most, fewest) of the last four rounds
    # 16384 pages of 4 KiB by default (fewer with transparent huge pages): kept, almost none
    assert faults[False][1] > 0 and 8 * faults[True][0] < faults[False][1], faults


def test_the_machine_line_names_the_allocator():
    from benchmarking.allocator import KEPT, allocator_record
    assert allocator_record(False, {}) == 'glibc malloc (default)'
    assert allocator_record(True, dict(LD_PRELOAD='libjemalloc.so.2', MALLOC_TOP_PAD_='1', PATH='/bin')) == \
        f'{KEPT}, LD_PRELOAD=libjemalloc.so.2, MALLOC_TOP_PAD_=1'
    jemalloc = dict(LD_PRELOAD='libjemalloc.so.2', MALLOC_CONF='dirty_decay_ms:-1')
    assert allocator_record(False, jemalloc) == 'LD_PRELOAD=libjemalloc.so.2, MALLOC_CONF=dirty_decay_ms:-1'
    record = dict(machine_record('cpu', allocator_record(True, {})), cpu='Xeon')
    assert describe(record).endswith(KEPT)
    assert 'malloc' not in describe(dict(record, allocator=None))
    assert parse_args(['--keep-freed-memory']).keep_freed_memory and not parse_args([]).keep_freed_memory
