"""tools/benchmark_tables.py (tools/benchmarking/docs.py): the benchmark tables of tools/README.md
are what the committed JSON files give, each JSON names its machine, and a table rendered from a
JSON the benchmark writes here holds that JSON's values."""
import json
import os
import shutil
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, 'tools'))

import benchmark_tables  # noqa: E402
from benchmarking.cli import main as benchmark  # noqa: E402
from benchmarking.docs import (Table, blocks_in, load_manifest, load_result, option_differences,  # noqa: E402
                               options_of, render)
from benchmarking.machine import describe  # noqa: E402

README = os.path.join(ROOT, 'tools', 'README.md')
MANIFEST = os.path.join(ROOT, 'tools', 'benchmarks', 'figures.yaml')
SMALL = ['--model', 'vit_tiny_patch16_224', '--size', '64', '64', '--variants', 'trunk', 'simple',
         '--repeats', '1', '--warmup', '0', '--threads', '1']
COLUMNS = (('seconds', 'seconds'), ('time / `trunk`', 'ratio'), ('GFLOP', 'gflop'), ('FLOPs / `trunk`', 'flop_ratio'))
MEMORY_COLUMNS = (('peak MiB', 'peak_mib'), ('peak / `trunk`', 'peak_ratio'), ('call MiB', 'call_mib'),
                  ('call / `trunk`', 'call_ratio'))


def small_command(path: str, *more: str) -> str:
    return ' '.join(['python', 'tools/benchmark.py'] + SMALL + list(more) + ['--json', path])


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    """(the JSON file, its loaded result) of a quick benchmark run made here."""
    path = tmp_path_factory.mktemp('bench') / 'small.json'
    benchmark(SMALL + ['--json', str(path)])
    return path, json.loads(path.read_text())


def table_rows(text: str) -> list:
    """The markdown tables of ``text``: one dict (header -> cell) per body row."""
    rows, header = [], None
    for line in text.splitlines():
        if not line.startswith('|'):
            header = None
            continue
        cells = [c.strip() for c in line.strip('|').split('|')]
        if header is None:
            header = cells
        elif set(cells) != {'---'}:
            rows.append(dict(zip(header, cells)))
    return rows


def assert_shows(cell: str, value: float) -> None:
    """``cell`` is ``value`` rounded to the digits it shows."""
    decimals = len(cell.partition('.')[2])
    assert abs(float(cell) - value) <= 0.5 * 10 ** -decimals + 1e-12, (cell, value)


# --------------------------------------------------------------------------- the committed tables
def test_the_committed_tables_are_what_their_json_gives(capsys):
    assert benchmark_tables.main(['--check']) == 0, capsys.readouterr().err


def test_every_table_has_its_json_and_the_json_names_its_machine():
    tables = load_manifest(MANIFEST)
    with open(README) as f:
        blocks = blocks_in(f.read())
    assert tables and set(blocks) == {t.name for t in tables}
    for t in tables:
        assert t.file.startswith('tools/benchmarks/') and t.file.endswith('.json')
        result = load_result(os.path.join(ROOT, t.file))  # refuses a file without a machine record
        assert result['machine']['cpu'] and describe(result['machine']) in blocks[t.name], t.name
        assert options_of(t.command)['variants'], t.name  # the benchmark's own parser takes the command


# --------------------------------------------------------------------------- rendering a JSON
def test_a_table_holds_the_values_of_its_json(small):
    path, result = small
    text = render(Table('small', 'A small run', str(path), small_command(str(path))), result)
    assert 'Placeholder' not in text and text.startswith('**A small run**')
    assert f"`{describe(result['machine'])}`" in text
    assert '`vit_tiny_patch16_224`, input 1x3x64x64, forward' in text
    shown = table_rows(text)
    assert [r['variant'] for r in shown] == ['`trunk`', '`simple`'] and 'peak MiB' not in shown[0]
    for cells, row in zip(shown, result['rows']):
        for header, key in COLUMNS:
            assert_shows(cells[header], row[key])


def test_memory_columns_appear_where_the_rows_have_them(small):
    """(``--memory`` starts a process per variant: its rows are given their fields here.)"""
    path, result = small
    rows = [dict(r, peak_mib=100.0 + 17.31 * i, call_mib=40.0 + 3.27 * i) for i, r in enumerate(result['rows'])]
    for r in rows:
        r.update(peak_ratio=r['peak_mib'] / rows[0]['peak_mib'], call_ratio=r['call_mib'] / rows[0]['call_mib'])
    text = render(Table('small', 'A small run', str(path), small_command(str(path))), dict(result, rows=rows))
    for cells, row in zip(table_rows(text), rows):
        for header, key in COLUMNS + MEMORY_COLUMNS:
            assert_shows(cells[header], row[key])


def test_a_json_written_with_other_options_is_shown_as_a_placeholder(small):
    path, result = small
    command = small_command(str(path)).replace('--repeats 1', '--repeats 3')
    assert option_differences(result, command) == ['repeats 1 (the command: 3)']
    text = render(Table('small', 'A small run', str(path), command), result)
    assert '**Placeholder, not a measurement**' in text and 'repeats 1 (the command: 3)' in text


def test_check_names_the_table_that_differs_and_a_rewrite_makes_it_agree(small, tmp_path, capsys):
    path, _ = small
    shutil.copy(path, tmp_path / 'small.json')
    (tmp_path / 'figures.yaml').write_text(
        f"tables:\n  - name: small\n    title: A small run\n    file: small.json\n"
        f"    command: {small_command('small.json')}\n")
    readme = tmp_path / 'README.md'
    readme.write_text('# tools\n\n<!-- benchmark:small -->\nstale\n<!-- /benchmark:small -->\n\nthe end\n')
    options = ['--readme', str(readme), '--manifest', str(tmp_path / 'figures.yaml'), '--root', str(tmp_path)]
    assert benchmark_tables.main(['--check'] + options) == 1
    assert "table 'small' differs" in capsys.readouterr().err
    assert benchmark_tables.main(options) == 0
    text = readme.read_text()
    assert text.startswith('# tools\n\n<!-- benchmark:small -->\n') and text.endswith('<!-- /benchmark:small -->\n\nthe end\n')
    assert benchmark_tables.main(['--check'] + options) == 0
    assert benchmark_tables.main(['--check', '--measured'] + options) == 0  # its options are its command's
    readme.write_text(text.replace('| `trunk` |', '| `trunk2` |'))
    assert benchmark_tables.main(['--check'] + options) == 1
