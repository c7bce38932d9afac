"""Write the benchmark tables of tools/README.md from the committed ``tools/benchmark.py --json``
files (tools/benchmarks/*.json), as listed in tools/benchmarks/figures.yaml.

    python tools/benchmark_tables.py             # rewrite the tables in place
    python tools/benchmark_tables.py --check     # exit 1 naming every table that differs from its JSON
    python tools/benchmark_tables.py --measured  # also exit 1 naming the placeholder tables

Each table sits between ``<!-- benchmark:NAME -->`` and ``<!-- /benchmark:NAME -->`` lines; what is
between them is generated (see ``tools/benchmarking/docs.py``). To add one: run the benchmark with
``--json tools/benchmarks/NAME.json``, list it in the manifest (name, title, file, the command),
put the two marker lines in the README, run this script.
"""
import argparse
import difflib
import os
import sys
from typing import List, Optional

from benchmarking.docs import (differing_tables, is_placeholder, load_manifest, load_result,
                               rendered_bodies, replace_blocks)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, 'tools', 'README.md')
MANIFEST = os.path.join(ROOT, 'tools', 'benchmarks', 'figures.yaml')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--check', action='store_true',
                        help='write nothing; exit 1 naming every table that differs from what its JSON gives')
    parser.add_argument('--measured', action='store_true',
                        help="also exit 1 naming every table whose JSON was not written by its command's "
                             "options (a placeholder)")
    parser.add_argument('--readme', default=README, help='the markdown file holding the tables')
    parser.add_argument('--manifest', default=MANIFEST, help='the list of tables (YAML)')
    parser.add_argument('--root', default=ROOT, help="the folder the manifest's files are relative to")
    return parser.parse_args(argv)


def relative(path: str) -> str:
    return os.path.relpath(path, os.getcwd())


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        tables = load_manifest(args.manifest)
        bodies = rendered_bodies(tables, args.root)
        with open(args.readme) as f:
            text = f.read()
        new_text = replace_blocks(text, bodies)
        differing = differing_tables(text, bodies)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    status = 0
    placeholders = [t.name for t in tables
                    if is_placeholder(t, load_result(os.path.join(args.root, t.file)))]
    for t in tables:
        state = 'placeholder (its options are not its command\'s)' if t.name in placeholders else 'from its command'
        print(f"{t.name}: {t.file}, {state}")
    if args.check:
        for name in differing:
            table = next(t for t in tables if t.name == name)
            print(f"{relative(args.readme)}: table {name!r} differs from what {table.file} gives "
                  f"(rewrite it: python tools/benchmark_tables.py)", file=sys.stderr)
        if differing:
            diff = difflib.unified_diff(text.splitlines(), new_text.splitlines(), 'committed', 'generated',
                                        lineterm='', n=1)
            print('\n'.join(list(diff)[:60]), file=sys.stderr)
            status = 1
        else:
            print(f"{relative(args.readme)}: every table equals what its JSON gives")
    elif new_text != text:
        with open(args.readme, 'w') as f:
            f.write(new_text)
        print(f"{relative(args.readme)}: rewrote {', '.join(differing)}")
    else:
        print(f"{relative(args.readme)}: unchanged")
    if args.measured and placeholders:
        print(f"placeholder tables (run their commands): {', '.join(placeholders)}", file=sys.stderr)
        status = 1
    return status


if __name__ == '__main__':
    sys.exit(main())
