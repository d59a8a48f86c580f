"""The ``rubricrl`` command line.

Each subcommand lives in ``rubricrl.commands.<name>`` and exposes ``add_parser(subparsers)`` and
``run(args) -> int``. Errors the user can fix (``UserError``) print one line per problem and exit 2;
anything unexpected prints a one-line summary (``--debug`` shows the traceback) and exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys

from rubricrl import __version__
from rubricrl.errors import run_guarded

# Order = order in --help. A module missing from an install is skipped, so a partial install still works.
COMMANDS = [
    "validate",
    "rubrics",
    "generate",
    "grade",
    "score",
    "models",
    "data",
    "serve",
    "replicate",
    "eval",
    "report",
    "nemo",
    "cluster",
    "check",
    "regenerate",
]


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
    _polish(parser)
    return parser


_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data):`~?([^`]*)`")


def _plain(text: str) -> str:
    """Docstring markup as plain terminal text: ``x`` -> `x`, :func:`a.b` -> a.b, "Examples::" -> "Examples:"."""
    return _ROLE.sub(r"\1", text).replace("``", "`").replace("::\n", ":\n")


def _polish(parser: argparse.ArgumentParser) -> None:
    """One help style for every subcommand: a description (its help line when none was given), no RST
    markup, and ``N`` as the metavar of integer options."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not sub.description and helps.get(name):
                    sub.description = helps[name][0].upper() + helps[name][1:] + "."
                _polish(sub)
        else:
            if action.help:
                action.help = _plain(action.help)
            if action.option_strings and action.type is int and action.metavar is None:
                action.metavar = "N"
    if parser.description:
        parser.description = _plain(parser.description)


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
