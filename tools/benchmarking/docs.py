"""Benchmark tables for the documentation: the ``--json`` files of ``tools/benchmark.py`` rendered as
markdown blocks between markers in a README, so that every figure there is what a committed JSON
file holds, beside the command that wrote it and the machine it ran on.

A block in the README::

    <!-- benchmark:NAME -->
    (generated: title, command, one table per run and input size, the benchmark's own lines
    under each table, the machine line)
    <!-- /benchmark:NAME -->

The manifest (a YAML file, ``tools/benchmarks/figures.yaml``) lists every table: ``name`` (the
marker), ``title``, ``file`` (the JSON, relative to the repository) and ``command`` (the
``python tools/benchmark.py ... --json FILE`` command line that writes that file). The command's
options are compared with the options the JSON records: where they differ, the block says the file
is a placeholder and which options differ (nothing is said about the measured values).
``tools/benchmark_tables.py`` rewrites the blocks, or with ``--check`` names those that differ.
"""
import json
import math
import os
import re
import shlex
from typing import Dict, List, NamedTuple, Optional, Tuple

from .cli import parse_args
from .eomt_figures import RUNS
from .frozen import frozen_lines
from .machine import ISA_LIMITS, describe
from .official_adapter import VARIANT as OFFICIAL_VARIANT
from .official_adapter import ratio_lines

BENCHMARK_SCRIPT = 'tools/benchmark.py'
# options of the JSON that say where things were written or read, not what was measured
# options tools/benchmark.py gained after some JSON files were written, with the value those ran at
LATER_OPTIONS = {'keep_freed_memory': False}
IGNORED_OPTIONS = ('json', 'csv', 'plot', 'official_adapter_dir')
MANIFEST_KEYS = ('name', 'title', 'file', 'command')
MARKER = re.compile(r'<!-- benchmark:(?P<name>[\w.-]+) -->\n(?P<body>.*?)<!-- /benchmark:(?P=name) -->',
                    re.S)
WRAP = 96  # command lines are wrapped (shell continuations) at about this many characters


class Table(NamedTuple):
    """One table of the manifest."""
    name: str
    title: str
    file: str
    command: str


# ------------------------------------------------------------------------------ the manifest
def load_manifest(path: str) -> List[Table]:
    """The tables of a manifest file (``tables:``, a list of mappings with ``MANIFEST_KEYS``),
    checked: names unique, and each command writes its table's file (``--json FILE``)."""
    import yaml
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    tables = []
    for i, entry in enumerate(data.get('tables') or []):
        missing = [k for k in MANIFEST_KEYS if not isinstance(entry.get(k), str) or not entry[k].strip()]
        if missing:
            raise ValueError(f"{path}: table {i} ({entry.get('name', 'no name')}) lacks {missing}")
        table = Table(*(' '.join(entry[k].split()) if k == 'command' else entry[k].strip()
                        for k in MANIFEST_KEYS))
        written = json_path_of(table.command)
        if written != table.file:
            raise ValueError(f"{path}: table {table.name!r}: its command writes {written!r} "
                             f"(--json), not its file {table.file!r}")
        tables.append(table)
    names = [t.name for t in tables]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"{path}: table names used twice: {duplicated}")
    return tables


def split_command(command: str) -> Tuple[Dict[str, str], List[str]]:
    """(environment assignments, benchmark arguments) of ``[VAR=VALUE ...] python
    tools/benchmark.py ARGS``."""
    words = shlex.split(command)
    env = {}
    while words and re.match(r'^[A-Za-z_]\w*=', words[0]):
        key, _, value = words.pop(0).partition('=')
        env[key] = value
    if len(words) < 2 or not os.path.basename(words[0]).startswith('python') or words[1] != BENCHMARK_SCRIPT:
        raise ValueError(f"not a `python {BENCHMARK_SCRIPT} ...` command: {command!r}")
    return env, words[2:]


def json_path_of(command: str) -> Optional[str]:
    """The ``--json`` file of a benchmark command (None without one)."""
    argv = split_command(command)[1]
    for i, word in enumerate(argv):
        if word == '--json' and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith('--json='):
            return word.partition('=')[2]
    return None


def options_of(command: str) -> dict:
    """The options ``tools/benchmark.py`` runs with for ``command`` (its own parser and defaults),
    as its JSON records them. The official ViT-Adapter variant is parsed without its code folder,
    which the parser would look for on this machine."""
    argv = split_command(command)[1]
    variants = None
    if OFFICIAL_VARIANT in argv:
        start = argv.index('--variants') + 1
        end = next((i for i in range(start, len(argv)) if argv[i].startswith('--')), len(argv))
        variants = argv[start:end]
        kept = [v for v in variants if v != OFFICIAL_VARIANT]
        if not kept:
            raise ValueError(f"{command!r}: {OFFICIAL_VARIANT!r} needs another variant beside it here")
        argv = argv[:start] + kept + argv[end:]
        if '--official-adapter-dir' in argv:
            i = argv.index('--official-adapter-dir')
            del argv[i:i + 2]
    try:
        options = vars(parse_args(argv))
    except SystemExit as err:
        raise ValueError(f"tools/benchmark.py refuses {command!r} (exit {err.code})") from None
    if variants is not None:
        options['variants'] = variants
    return json.loads(json.dumps(options, default=str))


def option_differences(result: dict, command: str) -> List[str]:
    """What in ``result`` (a loaded JSON) differs from what ``command`` would record: one item
    per option (``repeats 1 (the command: 3)``), and the instruction-set limits of the command's
    environment against the machine record's."""
    differences = []
    # the JSON's ``size`` is its first input size: the sizes run are those of its rows
    sizes = [list(s) for s in dict.fromkeys((r['height'], r['width']) for r in result.get('rows', []))]
    for key, wanted in options_of(command).items():
        if key in IGNORED_OPTIONS:
            continue
        if key not in result and key in LATER_OPTIONS and wanted == LATER_OPTIONS[key]:
            continue  # an option added after the JSON was written, at the default it ran with
        got = sizes if key == 'size' else result.get(key, '(not recorded)')
        if got != wanted:
            differences.append(f"{key} {_option_text(got)} (the command: {_option_text(wanted)})")
    env = split_command(command)[0]
    wanted_limits = {k: v for k, v in env.items() if k in ISA_LIMITS}
    got_limits = (result.get('machine') or {}).get('isa_limits') or {}
    if wanted_limits != got_limits:
        differences.append(f"instruction-set limits {_option_text(got_limits)} "
                           f"(the command: {_option_text(wanted_limits)})")
    return differences


def _option_text(value) -> str:
    if value is None:
        return '(not given)'
    if isinstance(value, list) and all(isinstance(v, list) for v in value):  # sizes
        return ' '.join('x'.join(str(n) for n in v) for v in value)
    if isinstance(value, list):
        return ' '.join(str(v) for v in value)
    if isinstance(value, dict):
        return ' '.join(f'{k}={v}' for k, v in value.items()) or 'none'
    return str(value)


# ------------------------------------------------------------------------------ the results
def load_result(path: str) -> dict:
    """A ``tools/benchmark.py --json`` file, checked to hold rows and name its machine."""
    with open(path) as f:
        result = json.load(f)
    machine = result.get('machine')
    if not isinstance(machine, dict) or not machine.get('cpu'):
        raise ValueError(f"{path}: no machine record (a `machine` with its `cpu`)")
    if not result.get('rows'):
        raise ValueError(f"{path}: no result rows")
    return result


def row_groups(rows: List[dict]) -> List[List[dict]]:
    """The rows of each run and input size (one printed table each), in their order; the first
    row of a group is its baseline (the ratios are to it)."""
    groups: Dict[tuple, List[dict]] = {}
    for r in rows:
        groups.setdefault((r.get('run'), r.get('model'), r['height'], r['width']), []).append(r)
    return list(groups.values())


def significant(x: float, digits: int = 4) -> str:
    """``x`` with ``digits`` significant digits, no exponent (1.234, 12.34, 0.001234)."""
    if x == 0 or not math.isfinite(x):
        return str(x)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def ratio(x: float) -> str:
    return f"{x:.3f}"


def mib(x: float) -> str:
    return f"{x:.1f}"


def caption(result: dict, rows: List[dict]) -> str:
    """What the group measured: trunk or config, input, mode, settings, repetitions."""
    first = rows[0]
    run = next((r for r in RUNS if r.name == first.get('run')), None)
    name = first.get('model') or result.get('config') or result.get('model')
    mode = first['mode']
    forward = run.segmentor_forward if run else result.get('segmentor_forward')
    if mode == 'forward' and forward == 'predict' and any(r['variant'].endswith('segmentor') for r in rows):
        mode = 'forward (prediction: test_step)'
    text = f"`{name}`, input {first['batch']}x3x{first['height']}x{first['width']}, {mode}"
    dtypes = result.get('dtype') or ['fp32']
    flags = [f for f, on in ((f"autocast {dtypes[0]}", dtypes != ['fp32'] and len(dtypes) == 1),
                             ('compiled', result.get('compile') == 'on'),
                             ('channels_last', result.get('channels_last')),
                             ('grad checkpointing', result.get('grad_checkpointing'))) if on]
    text += ''.join(f", {f}" for f in flags)
    threads, repeats, warmup = first['threads'], result.get('repeats'), result.get('warmup')
    text += (f", {first['device']}, {threads} thread{'s' * (threads != 1)}, median of {repeats} "
             f"run{'s' * (repeats != 1)} after {warmup} warm-up call{'s' * (warmup != 1)}")
    return (f"{run.name}: " if run else '') + text


def markdown_table(rows: List[dict]) -> List[str]:
    """One markdown table: variant, seconds, time ratio to the first row; GFLOP and FLOP ratio
    where counted; peak and per-call MiB and their ratios where measured."""
    base = f"`{rows[0]['label']}`"
    columns = [('variant', lambda r: f"`{r['label']}`"), ('seconds', lambda r: significant(r['seconds'])),
               (f'time / {base}', lambda r: ratio(r['ratio']))]
    if all('gflop' in r for r in rows):
        columns += [('GFLOP', lambda r: significant(r['gflop'])),
                    (f'FLOPs / {base}', lambda r: ratio(r['flop_ratio']))]
    if all('peak_mib' in r for r in rows):
        columns += [('peak MiB', lambda r: mib(r['peak_mib'])), (f'peak / {base}', lambda r: ratio(r['peak_ratio'])),
                    ('call MiB', lambda r: mib(r['call_mib'])), (f'call / {base}', lambda r: ratio(r['call_ratio']))]
    lines = ['| ' + ' | '.join(c[0] for c in columns) + ' |',
             '| ' + ' | '.join('---' for _ in columns) + ' |']
    lines += ['| ' + ' | '.join(c[1](r) for c in columns) + ' |' for r in rows]
    return lines


def printed_lines(rows: List[dict]) -> List[str]:
    """The lines the benchmark prints under a table, from the rows, in its order: frozen vs
    fine-tuned, what ``FastUPerHead``'s measurement chose, the official ViT-Adapter's parity and
    ratios."""
    lines = frozen_lines(rows) + [f"{r['label']}: measured choice " + ', '.join(f"{conv} {choice}" for conv, choice in
                                                           r['measured_choices'].items())
             for r in rows if r.get('measured_choices')]
    return lines + list(rows[0].get('parity', [])) + ratio_lines(rows)


def figures_table(figures: List[dict]) -> List[str]:
    """``--eomt-figures``: the figures and their targets as the JSON holds them."""
    lines = ['| figure | what | ratio of | trunk | size | value | target | FLOP ratio | time / FLOP ratio |',
             '| --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for f in figures:
        target = '(none for this trunk)' if f.get('target') is None else f"<= {f['target']:g}"
        flop = ratio(f['flop_ratio']) if 'flop_ratio' in f else ''
        per_flop = ratio(f['time_per_flop']) if 'time_per_flop' in f else ''
        lines.append(f"| {f['figure']} | {f['what']} | `{f['pair']}` | `{f['model']}` | {f['height']}x{f['width']} "
                     f"| {ratio(f['value'])} | {target} | {flop} | {per_flop} |")
    return lines


def wrap_command(command: str, width: int = WRAP) -> str:
    """The command over shell-continued lines of about ``width`` characters, each option kept
    with its values where they fit on one line."""
    groups: List[List[str]] = []
    for word in shlex.split(command):
        if not groups or word.startswith('--'):
            groups.append([])
        groups[-1].append(shlex.quote(word))
    lines, line = [], ''
    for group in groups:
        for word in ([' '.join(group)] if len(' '.join(group)) <= width - 4 else group):
            if line.strip() and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = '    ' + word
            else:
                line = f"{line} {word}" if line else word
    return ' \\\n'.join(lines + [line])


def render(table: Table, result: dict) -> str:
    """The block of ``table`` from its loaded JSON: title, command, placeholder note if the JSON's
    options are not the command's, a caption and a table per run and size with the benchmark's
    lines under it, the EoMT figures if any, the machine line."""
    parts = [f"**{table.title}**", f"```bash\n{wrap_command(table.command)}\n```"]
    differences = option_differences(result, table.command)
    if differences:
        parts.append(f"> **Placeholder, not a measurement**: `{table.file}` was not written by this "
                     f"command; its options differ: " + '; '.join(differences) + '. Run the command to '
                     f"replace it, then `python tools/benchmark_tables.py`.")
    for rows in row_groups(result['rows']):
        parts.append(caption(result, rows))
        parts.append('\n'.join(markdown_table(rows)))
        extra = printed_lines(rows)
        if extra:
            parts.append('```text\n' + '\n'.join(extra) + '\n```')
    if result.get('figures'):
        parts.append('\n'.join(figures_table(result['figures'])))
    parts.append(f"`{describe(result['machine'])}`")
    return '\n\n'.join(parts)


def is_placeholder(table: Table, result: dict) -> bool:
    """Whether the JSON's options differ from its command's."""
    return bool(option_differences(result, table.command))


# ------------------------------------------------------------------------------ the README
def blocks_in(text: str) -> Dict[str, str]:
    """Every marked block of ``text``: name -> its body (what lies between the markers)."""
    found: Dict[str, str] = {}
    for match in MARKER.finditer(text):
        if match['name'] in found:
            raise ValueError(f"the marker benchmark:{match['name']} is used twice")
        found[match['name']] = match['body']
    opened = set(re.findall(r'<!-- benchmark:([\w.-]+) -->', text))
    unclosed = sorted(opened - set(found))
    if unclosed:
        raise ValueError(f"markers without their closing <!-- /benchmark:NAME -->: {unclosed}")
    return found


def body_of(rendered: str) -> str:
    """A block's body: the rendered text between blank lines (an HTML comment line ends its
    HTML block, so the markdown after it renders)."""
    return '\n' + rendered.strip('\n') + '\n\n'


def replace_blocks(text: str, bodies: Dict[str, str]) -> str:
    """``text`` with the body of every block named in ``bodies`` replaced; every name must have
    its markers in ``text`` and every block of ``text`` a body."""
    present = blocks_in(text)
    missing, unknown = sorted(set(bodies) - set(present)), sorted(set(present) - set(bodies))
    if missing:
        raise ValueError(f"no markers for the tables {missing}: add <!-- benchmark:NAME --> "
                         f"<!-- /benchmark:NAME --> lines where each goes")
    if unknown:
        raise ValueError(f"markers of tables the manifest does not list: {unknown}")
    return MARKER.sub(lambda m: f"<!-- benchmark:{m['name']} -->\n{bodies[m['name']]}"
                                f"<!-- /benchmark:{m['name']} -->", text)


def rendered_bodies(tables: List[Table], root: str) -> Dict[str, str]:
    """name -> block body, every table rendered from its JSON (files relative to ``root``)."""
    bodies = {}
    for table in tables:
        path = os.path.join(root, table.file)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"table {table.name!r}: {table.file} does not exist: run "
                                    f"{table.command}")
        bodies[table.name] = body_of(render(table, load_result(path)))
    return bodies


def differing_tables(text: str, bodies: Dict[str, str]) -> List[str]:
    """The names whose block in ``text`` is not the body generated for them (or is missing)."""
    present = blocks_in(text)
    return [name for name, body in bodies.items() if present.get(name) != body]
