"""The package's rooms and their one-way doors, read from the code's own imports (no module is run).

Each room imports only the rooms below it; the necks and the heads share the layers room and never
import each other; the weights room knows no model; only the glue (vitadapter.engine) imports an
mm* package; and nothing outside the trunk reaches into the timm model it wraps or writes the
trunk's attributes.
"""
import ast
import pathlib

import vitadapter

from conftest import ROOT

PACKAGE = pathlib.Path(vitadapter.__file__).parent
# room -> the rooms it may import (besides itself); top-level modules are rooms of their own
ALLOWED = {
    'compat': set(),
    'version': set(),
    'layers': {'compat'},
    'weights': {'compat'},
    'data': set(),
    'meta_build': set(),
    'summary': set(),
    'visualization': set(),
    'trunk': {'layers', 'weights', 'compat'},
    'necks': {'layers', 'compat'},
    'heads': {'layers', 'compat'},
    'backbones': {'trunk', 'necks', 'layers', 'weights', 'compat'},
    'models': {'trunk', 'heads', 'layers', 'weights', 'compat'},
    'export': {'backbones', 'trunk', 'layers', 'compat'},
    'convert': {'weights', 'backbones'},
    'assets': set(),
    'info': None,  # the console script: a backbone or an mmseg/mmdet config
    'engine': None,  # the glue: anything
    '__init__': None,
}
MM = ('mmcv', 'mmengine', 'mmseg', 'mmdet', 'mmpretrain')
# where a core module imports an mm* package when called, never when imported
LAZY_MM = {'layers/deform_attn.py': "mmcv's compiled CUDA kernel, where mmcv has it",
           'info.py': 'mmseg/mmdet configs, given one'}


def modules():
    for path in sorted(PACKAGE.rglob('*.py')):
        parts = path.relative_to(PACKAGE).with_suffix('').parts
        yield path, parts


def imported(path: pathlib.Path, parts):
    """(lineno, absolute module name, whether at module level) of every import in the file."""
    package = ['vitadapter', *parts[:-1]]
    tree = ast.parse(path.read_text())
    top_level = {id(n) for n in tree.body} | {id(n) for stmt in tree.body if isinstance(stmt, (ast.If, ast.Try))
                                              for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, id(node) in top_level
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                yield node.lineno, '.'.join(base + ([node.module] if node.module else [])), id(node) in top_level
            else:
                yield node.lineno, node.module or '', id(node) in top_level


def test_rooms_import_only_the_rooms_below_them():
    offenders = []
    for path, parts in modules():
        room = parts[0] if len(parts) > 1 else parts[0]
        allowed = ALLOWED.get(room, set())
        where = str(path.relative_to(PACKAGE))
        for lineno, name, at_import in imported(path, parts):
            top = name.split('.')
            if top[0] in MM and room != 'engine' and (at_import or where not in LAZY_MM):
                offenders.append(f'{where}:{lineno} imports {name} (mm* outside the glue)')
            if top[0] != 'vitadapter' or len(top) < 2 or allowed is None:
                continue
            target = top[1]
            if target != room and target not in allowed:
                offenders.append(f'{where}:{lineno} ({room}) imports {name}')
    assert not offenders, '\n'.join(offenders)


def test_the_layering_rules_know_every_room():
    rooms = {parts[0] for _, parts in modules()}
    assert rooms <= set(ALLOWED), sorted(rooms - set(ALLOWED))


def trunk_reaches(path: pathlib.Path):
    """Where code reads ``<x>.trunk.model`` (the wrapped timm model) or writes ``<x>.trunk.<attr>``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr == 'model' and isinstance(node.value, ast.Attribute) \
                and node.value.attr == 'trunk':
            yield node.lineno, 'reads trunk.model'
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        for target in targets:
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute) \
                    and target.value.attr == 'trunk':
                yield node.lineno, f'writes trunk.{target.attr}'


def test_only_the_trunk_touches_the_timm_model_and_the_trunks_attributes():
    """The backbones, models, glue and tools use the trunk's public API (select_blocks, embed,
    run_blocks, blocks, param_layer_ids, ...), never its timm model or its attributes."""
    places = [p for p in PACKAGE.rglob('*.py') if 'trunk' not in p.relative_to(PACKAGE).parts]
    places += sorted(pathlib.Path(ROOT, 'tools').rglob('*.py'))
    offenders = [f'{path}:{lineno} {what}' for path in places for lineno, what in trunk_reaches(path)]
    assert not offenders, '\n'.join(offenders)
