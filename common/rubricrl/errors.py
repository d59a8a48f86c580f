"""User-facing errors: the CLI prints them as ``path:line: message`` and exits non-zero, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """Bad input or configuration that the user can fix.

    Args:
        message: what is wrong and what to do about it.
        path: file the problem is in, if any.
        line: 1-based line number in ``path``, if known.
        exit_code: process exit code the CLI uses (2 = bad input, by convention).
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None, exit_code: int = 2):
        self.message = message
        self.path = path
        self.line = line
        self.exit_code = exit_code
        super().__init__(self.render())

    def render(self) -> str:
        if self.path and self.line:
            return f"{self.path}:{self.line}: {self.message}"
        if self.path:
            return f"{self.path}: {self.message}"
        return self.message


class Problems(UserError):
    """Several input problems at once (e.g. from ``rubricrl validate``), one ``path:line: ...`` each."""

    def __init__(self, problems: list[str], exit_code: int = 2):
        self.problems = problems
        super().__init__("\n".join(problems), exit_code=exit_code)


def run_guarded(fn: Callable[[], int | None], debug: bool = False) -> int:
    """Run a command body under the CLI's error policy and return its exit code.

    ``UserError``: its message, its exit code. Ctrl-C: 130 (what was written is kept). A closed pipe
    (``... | head``): 0. Anything else: a one-line summary and 1, or the traceback when ``debug``.
    """
    try:
        return int(fn() or 0)
    except UserError as e:
        print(e.render(), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted; everything written so far is kept (re-run the same command to resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `rubricrl score ... | head`
        return 0
    except Exception as e:  # a command never shows a raw traceback unless asked
        if debug:
            raise
        print(f"error: {type(e).__name__}: {e} (re-run with --debug for the traceback)", file=sys.stderr)
        return 1
