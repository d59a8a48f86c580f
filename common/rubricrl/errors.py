"""User-facing errors: the CLI prints them as ``path:line: message`` and exits non-zero, no traceback."""

from __future__ import annotations


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
