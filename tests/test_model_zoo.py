"""The model zoo, mmsegmentation's convention: every config folder has a README.md and a metafile.yaml,
and they agree with the configs and with each other.

* every config of every folder (configs/_base_ is not a folder of recipes) has exactly one metafile
  entry, and every entry's ``Config`` exists;
* every folder has README.md and metafile.yaml, and the metafile's collection points at that README;
* each README's results tables list the folder's configs, one row each, with the metafile's values
  for every trained config;
* a config that trains on data available here (``camvid``, ``shapes``) has results; every other has
  ``Results: null`` and its README row says it was not trained;
* no value is the placeholder ``TBD`` (results still being measured);
* config names follow mmseg's ``{algorithm}_{backbone}_{N}xb{B}-{schedule}_{data}-{H}x{W}``
  (mmdet's ``..._{neck}_{N}xb{B}-{schedule}_{data}`` for the detection folder), and the metafile's
  batch size, crop size and schedule are those of the name.

Plain Python and PyYAML (a dependency of timm): no mm* package is imported.
"""
import glob
import os
import re

import pytest
import yaml

from conftest import ROOT

CONFIGS = os.path.join(ROOT, 'configs')
FOLDERS = sorted(d for d in os.listdir(CONFIGS)
                 if os.path.isdir(os.path.join(CONFIGS, d)) and d != '_base_')
CONFIG_FILES = sorted(os.path.relpath(p, ROOT) for d in FOLDERS
                      for p in glob.glob(os.path.join(CONFIGS, d, '*.py')))

_PART = r'[a-z0-9]+(?:-[a-z0-9]+)*'
_TRAINING = r'(?:(?P<tag>[a-z]+)-)?(?P<gpus>\d+)xb(?P<batch>\d+)-(?P<schedule>(?:[a-z]+-)*(?P<length>\d+)(?P<unit>k|it|e))'
# mmseg: {algorithm}_{backbone}_{N}xb{B}-{schedule}_{data}-{H}x{W}; an optional tag before the
# NxbB field (e.g. fsdp-16xb1) is allowed
SEG_NAME = re.compile(rf'^(?P<algorithm>{_PART})_(?P<backbone>{_PART})_{_TRAINING}'
                      r'_(?P<data>[a-z0-9]+(?:-[A-Za-z0-9]+)*?)-(?P<height>\d+)x(?P<width>\d+)$')
# mmdet: {algorithm}_{backbone}_{neck}_{N}xb{B}-{schedule}_{data}, data ending in coco, no crop
DET_NAME = re.compile(rf'^(?P<algorithm>{_PART})_(?P<backbone>{_PART})_(?P<neck>{_PART})_{_TRAINING}'
                      r'_(?P<data>(?:[a-z0-9]+-)?coco)$')
AVAILABLE_HERE = ('camvid', 'shapes')  # data sets present (or generated) here: configs trained
PLACEHOLDER = re.compile(r'\bTBD\b')
NOT_TRAINED = '- †'  # the metric cell of a row that was not trained; the note starts with '†'
SEG_COLUMNS = ['Method', 'Backbone', 'Pretrain', 'Crop Size', 'Lr schd', 'Batch', 'Training resources',
               's/iter', 'mIoU', 'config', 'log']
DET_COLUMNS = SEG_COLUMNS[:8] + ['box AP', 'mask AP', 'config', 'log']


def stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def name_match(name):
    return (DET_NAME if name.endswith('coco') else SEG_NAME).match(name)


def folder_configs(folder):
    return sorted(stem(p) for p in CONFIG_FILES if p.split(os.sep)[1] == folder)


def load_metafile(folder):
    path = os.path.join(CONFIGS, folder, 'metafile.yaml')
    if not os.path.isfile(path):
        pytest.fail(f'configs/{folder}: no metafile.yaml')
    with open(path) as f:
        return yaml.safe_load(f)


def all_entries():
    """(folder, entry) for every model of every metafile that exists."""
    out = []
    for folder in FOLDERS:
        if os.path.isfile(os.path.join(CONFIGS, folder, 'metafile.yaml')):
            out += [(folder, m) for m in (load_metafile(folder).get('Models') or [])]
    return out


def readme_text(folder):
    path = os.path.join(CONFIGS, folder, 'README.md')
    if not os.path.isfile(path):
        pytest.fail(f'configs/{folder}: no README.md')
    with open(path) as f:
        return f.read()


def cells(line):
    return [c.strip() for c in line.strip().strip('|').split('|')]


def results_rows(folder):
    """{config name: (line number, {column: cell})} over the README's results tables (the tables
    with Method and config columns); a config in two rows is an error."""
    rows, header = {}, None
    for number, line in enumerate(readme_text(folder).splitlines(), 1):
        if not line.startswith('|'):
            header = None
            continue
        row = cells(line)
        if header is None:
            header = row
            continue
        if set(''.join(row)) <= set('-: '):  # the separator line
            continue
        if 'Method' not in header or 'config' not in header:
            continue
        assert len(row) == len(header), f'configs/{folder}/README.md:{number}: {len(row)} cells, header has {len(header)}'
        cell = dict(zip(header, row))
        link = re.search(r'\[config\]\(([^)]+\.py)\)', cell['config'])
        assert link, f'configs/{folder}/README.md:{number}: the config cell links no .py file'
        name = stem(link.group(1))
        assert name not in rows, (f'configs/{folder}/README.md:{number}: {name} has a second row '
                                  f'(first at line {rows.get(name, (0,))[0]})')
        for column in DET_COLUMNS if folder_is_detection(folder) else SEG_COLUMNS:
            assert column in cell, f'configs/{folder}/README.md:{number}: results table without the {column!r} column'
        rows[name] = (number, cell)
    return rows


def folder_is_detection(folder):
    names = folder_configs(folder)
    return bool(names) and all(n.endswith('coco') for n in names)


def metrics_of(entry):
    out = {}
    for result in entry.get('Results') or []:
        out.update(result.get('Metrics') or {})
    return out


def same_value(cell, value):
    try:
        return float(cell) == float(value)
    except (TypeError, ValueError):
        return str(cell) == str(value)


# (b) every folder has README.md and metafile.yaml; the collection points at that README

@pytest.mark.parametrize('folder', FOLDERS)
def test_folder_has_readme_and_metafile(folder):
    readme_text(folder)
    meta = load_metafile(folder)
    collections = meta.get('Collections') or []
    assert collections, f'configs/{folder}/metafile.yaml: no Collections'
    for collection in collections:
        for key in ('Name', 'License', 'Metadata', 'Paper', 'README', 'Frameworks'):
            assert key in collection, f'configs/{folder}/metafile.yaml: collection without {key}'
        assert collection['README'] == f'configs/{folder}/README.md', (
            f"configs/{folder}/metafile.yaml: collection {collection['Name']!r} points at "
            f"{collection['README']!r}, not configs/{folder}/README.md")
        assert collection['Metadata'].get('Training Data'), f'configs/{folder}/metafile.yaml: no Training Data'
        assert {'Title', 'URL'} <= set(collection['Paper']), f'configs/{folder}/metafile.yaml: Paper needs Title and URL'


# (a) one metafile entry per config; every entry's Config exists

@pytest.mark.parametrize('config', CONFIG_FILES)
def test_config_has_exactly_one_metafile_entry(config):
    entries = [(folder, e) for folder, e in all_entries() if e.get('Config') == config]
    assert len(entries) == 1, f'{config}: {len(entries)} metafile entries, expected 1'
    folder, entry = entries[0]
    assert folder == config.split(os.sep)[1], f'{config}: its entry is in configs/{folder}/metafile.yaml'
    assert entry['Name'] == stem(config), f"{config}: entry named {entry['Name']!r}"


@pytest.mark.parametrize('folder', FOLDERS)
def test_metafile_entries_are_complete(folder):
    meta = load_metafile(folder)
    collections = {c['Name'] for c in meta.get('Collections') or []}
    for entry in meta.get('Models') or []:
        name = entry.get('Name')
        for key in ('Name', 'In Collection', 'Results', 'Config', 'Metadata', 'Weights', 'Training log',
                    'Paper', 'Code', 'Framework'):
            assert key in entry, f'configs/{folder}/metafile.yaml: {name}: no {key!r}'
        assert os.path.isfile(os.path.join(ROOT, entry['Config'])), f"{name}: Config {entry['Config']} does not exist"
        assert entry['In Collection'] in collections, f"{name}: In Collection {entry['In Collection']!r} is not a collection of the file"
        for key in ('Training Data', 'Batch Size', 'Crop Size', 'Lr schd', 'Training Resources'):
            assert key in entry['Metadata'], f'{name}: Metadata without {key!r}'
        for result in entry['Results'] or []:
            assert {'Task', 'Dataset', 'Metrics'} <= set(result), f'{name}: a result needs Task, Dataset and Metrics'
        code = entry['Code']
        if code.startswith('vitadapter.'):
            module = os.path.join(ROOT, *code.split('.'))
            assert os.path.isfile(module + '.py') or os.path.isdir(module), f'{name}: Code {code} is no module'


# (c) the README's results tables agree with the metafile

@pytest.mark.parametrize('folder', FOLDERS)
def test_readme_results_agree_with_metafile(folder):
    rows = results_rows(folder)
    configs = set(folder_configs(folder))
    assert not configs - set(rows), f'configs/{folder}/README.md: no results row for {sorted(configs - set(rows))}'
    assert not set(rows) - configs, f'configs/{folder}/README.md: rows for configs that do not exist: {sorted(set(rows) - configs)}'
    for entry in load_metafile(folder).get('Models') or []:
        name = entry['Name']
        if name not in rows:
            continue
        number, cell = rows[name]
        n, b = (int(x) for x in re.match(r'\s*\d+\s*\((\d+)x(\d+)\)', cell['Batch']).groups()) \
            if re.match(r'\s*\d+\s*\((\d+)x(\d+)\)', cell['Batch']) else (None, None)
        assert n is not None and n * b == entry['Metadata']['Batch Size'], (
            f"configs/{folder}/README.md:{number}: {name}: Batch {cell['Batch']!r}, metafile Batch Size {entry['Metadata']['Batch Size']}")
        timed = entry['Metadata'].get('Training Time (s/iter)')
        assert same_value(cell['s/iter'], '-' if timed is None else timed), (
            f"configs/{folder}/README.md:{number}: {name}: s/iter {cell['s/iter']!r} in the README, "
            f"Training Time (s/iter) {timed!r} in the metafile")
        for metric, value in metrics_of(entry).items():
            if metric in cell:
                assert same_value(cell[metric], value), (
                    f'configs/{folder}/README.md:{number}: {name}: {metric} {cell[metric]!r} in the README, '
                    f'{value!r} in the metafile')


# (d) trained where the data are here, and only there

@pytest.mark.parametrize('config', CONFIG_FILES)
def test_results_exactly_where_the_data_are_here(config):
    name, folder = stem(config), config.split(os.sep)[1]
    match = name_match(name)
    assert match, f'{config}: name does not follow the convention (see test_config_name_follows_mmseg)'
    trained = match.group('data').startswith(AVAILABLE_HERE)
    entry = next((e for f, e in all_entries() if e.get('Config') == config), None)
    assert entry is not None, f'{config}: no metafile entry'
    row = results_rows(folder).get(name)
    assert row is not None, f'configs/{folder}/README.md: no results row for {name}'
    number, cell = row
    metric = 'box AP' if name.endswith('coco') else 'mIoU'
    if trained:
        assert entry['Results'], f'{config}: trains on {match.group("data")} (here), but has no Results'
        assert cell[metric] != NOT_TRAINED, f'configs/{folder}/README.md:{number}: {name} is trained, its row says not'
    else:
        assert entry['Results'] is None, f'{config}: {match.group("data")} is not here, yet Results is {entry["Results"]!r}'
        assert cell[metric] == NOT_TRAINED, (
            f'configs/{folder}/README.md:{number}: {name}: {metric} cell {cell[metric]!r}, expected {NOT_TRAINED!r} (not trained)')
        notes = [' '.join(p.split()) for p in readme_text(folder).split('\n\n') if p.startswith('†')]
        assert any('not trained' in note for note in notes), (
            f'configs/{folder}/README.md: no note starting with "†" that says "not trained"')


# (e) no placeholder left

@pytest.mark.parametrize('folder', FOLDERS)
def test_no_placeholder_values(folder):
    found = []
    for file in ('README.md', 'metafile.yaml'):
        path = os.path.join(CONFIGS, folder, file)
        if not os.path.isfile(path):
            continue
        header, model = None, None
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if file == 'metafile.yaml' and line.startswith('- Name: '):
                    model = line.split(':', 1)[1].strip()
                if file == 'README.md':
                    header = (header or cells(line)) if line.startswith('|') else None
                if not PLACEHOLDER.search(line):
                    continue
                where = f'configs/{folder}/{file}:{number}'
                link = re.search(r'\[config\]\(([^)]+\.py)\)', line)
                if link and header:
                    columns = [c for c, v in zip(header, cells(line)) if PLACEHOLDER.search(v)]
                    found.append(f'{where}: {stem(link.group(1))}: {", ".join(columns)}')
                elif file == 'metafile.yaml':
                    found.append(f'{where}: {model}: {line.strip()}')
                else:
                    found.append(f'{where}: {line.strip()}')
    assert not found, f'{len(found)} placeholder (TBD) values:\n' + '\n'.join(found)


# (f) mmseg's naming, and the metafile's metadata are the name's

@pytest.mark.parametrize('config', CONFIG_FILES)
def test_config_name_follows_mmseg(config):
    name = stem(config)
    match = name_match(name)
    pattern = 'mmdet: {algorithm}_{backbone}_{neck}_{N}xb{B}-{schedule}_{data}' if name.endswith('coco') \
        else 'mmseg: {algorithm}_{backbone}_{N}xb{B}-{schedule}_{data}-{H}x{W}'
    assert match, f'{config}: the name does not follow {pattern}'
    entry = next((e for f, e in all_entries() if e.get('Config') == config), None)
    assert entry is not None, f'{config}: no metafile entry'
    meta = entry['Metadata']
    gpus, batch = int(match.group('gpus')), int(match.group('batch'))
    assert meta['Batch Size'] == gpus * batch, (
        f"{config}: Batch Size {meta['Batch Size']} in the metafile, {gpus}x{batch} in the name")
    if not name.endswith('coco'):
        crop = [int(match.group('height')), int(match.group('width'))]
        assert meta['Crop Size'] == crop, f"{config}: Crop Size {meta['Crop Size']} in the metafile, {crop} in the name"
    length, unit = int(match.group('length')), match.group('unit')
    if unit != 'e':  # epochs: the iterations depend on the data set's size
        iters = length * 1000 if unit == 'k' else length
        assert meta['Lr schd'] == iters, f"{config}: Lr schd {meta['Lr schd']} in the metafile, {iters} in the name"


@pytest.mark.parametrize('name', [
    'upernet_vit-t16-scratch_1000it_camvid-176x176',      # no NxbB field
    'upernet_vit-b16-deit_160k_ade20k-512x512',
    'upernet_vit-b16-deit_8x2-160k_ade20k-512x512',       # 8x2, not 8xb2
    'upernet_vit-b16-deit_8xb2_160k_ade20k-512x512',      # no '-' between NxbB and the schedule
    'upernet_vit-b16-deit_8xb2-160k_ade20k',              # no crop size
    'mask-rcnn_vit-b16-mae_simple-fpn_lsj-100e_coco',     # detection without NxbB
])
def test_names_without_the_convention_fail(name):
    assert name_match(name) is None
