"""``rubricrl validate PATH...``: check rubric banks and rubric JSONL files.

Exit 0 and ``ok: F files, R rubrics, C criteria`` on stdout when everything is valid; otherwise exit 2
with one ``path:line: what is wrong`` per problem on stderr (all problems in all files), then a summary.
"""

from __future__ import annotations

import argparse
import sys

from rubricrl.rubrics.loader import validate_paths


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "validate",
        help="check rubric files (YAML banks, JSONL incl. HealthBench / WritingBench records)",
        description="Check rubric files and folders (searched recursively for *.yaml, *.yml, *.jsonl). "
        "Reports every problem as path:line; exit 0 when all are valid, 2 otherwise.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="rubric file or folder")
    return p


def run(args: argparse.Namespace) -> int:
    stats, problems = validate_paths(args.paths)
    if not problems:
        print(f"ok: {stats.summary()}")
        return 0
    for line in problems:
        print(line, file=sys.stderr)
    n = len(problems)
    print(f"invalid: {n} problem{'s' if n != 1 else ''} ({stats.summary()} valid)", file=sys.stderr)
    return 2
