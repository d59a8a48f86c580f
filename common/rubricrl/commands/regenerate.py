"""``rubricrl regenerate [--check]``: write (or check) every generated file of the checkout.

The resolved config of every replication at every scale and the NeMo RL configs of the cluster recipes
(:mod:`rubricrl.pipeline.generated`). ``--check`` writes nothing and exits 1 listing each file that drifted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rubricrl.pipeline.generated import drift, regenerate


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "regenerate",
        help="write every generated file (resolved configs, NeMo RL recipes); --check lists drift",
        description="Regenerate replications/<paper>/configs/_resolved_<scale>.yaml and "
        "replications/<paper>/nemo_rl/*.yaml from the configs and recipes. Only files this command wrote "
        "(a `# GENERATED` header) are rewritten.",
    )
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 when a generated file drifted")
    p.add_argument("--root", type=Path, default=Path("."), help="repository root (default: the current directory)")
    return p


def run(args: argparse.Namespace) -> int:
    if args.check:
        problems = drift(args.root)
        for d in problems:
            print(d, file=sys.stderr)
        if problems:
            print(
                f"{len(problems)} generated files drifted; run `rubricrl regenerate` and review the diff",
                file=sys.stderr,
            )
            return 1
        print("every generated file matches its generator")
        return 0
    written = regenerate(args.root)
    for p in written:
        print(f"wrote {p}")
    print(f"{len(written)} files written" if written else "every generated file was up to date")
    return 0
