"""The ``rubricrl`` command line.

Each subcommand lives in ``rubricrl.commands.<name>`` and exposes ``add_parser(subparsers)`` and
``run(args) -> int``. Errors the user can fix (``UserError``) print one line per problem and exit 2;
anything unexpected prints a one-line summary (``--debug`` shows the traceback) and exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from rubricrl import __version__
from rubricrl.errors import run_guarded

# Order = order in --help. A module missing from an install is skipped, so a partial install still works.
COMMANDS = ["validate", "generate", "grade", "score", "models", "data", "serve", "replicate", "report", "nemo", "cluster"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rubricrl", description="Rubric-based RL: rubrics, judges, rewards, scoring.")
    parser.add_argument("--version", action="version", version=f"rubricrl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for unexpected errors")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"rubricrl.commands.{name}")
        except ModuleNotFoundError as e:  # pragma: no cover - only in partial installs
            if e.name == f"rubricrl.commands.{name}":
                continue
            raise
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    return run_guarded(lambda: args._run(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
