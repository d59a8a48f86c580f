"""``rubricrl check-expected RUN_DIR``: check a finished run against its replication's ``expected.yaml``.

Exit 0 when every ``fail`` expectation holds, 1 when one does not, 2 on bad input (not a run folder, a
malformed expectations file). The format: :mod:`rubricrl.report.expectations`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rubricrl.report.expectations import check_run


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "check-expected",
        help="check a finished run against its replication's expected.yaml (exit 1 when one fails)",
        description="Evaluate the executable metric expectations of replications/<paper>/expected.yaml "
        "(one list per scale) against a run folder; prints one line per expectation.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder (runs/<run>), holding config.yaml")
    p.add_argument("--scale", help="expectation set (default: run.scale in the run's config.yaml)")
    p.add_argument("--expected", type=Path, help="expectations file (default: replications/<paper>/expected.yaml)")
    return p


def run(args: argparse.Namespace) -> int:
    return check_run(args.run_dir, scale=args.scale, expected=args.expected)
