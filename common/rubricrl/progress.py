"""Progress of long work: a tqdm bar on a terminal, plain progress lines in logs.

``tqdm(disable=None)`` hides itself when stderr is not a terminal, so a job log (Slurm, ``make`` piped to a
file, CI) showed nothing for minutes. :func:`progress_bar` gives a tqdm bar on a terminal and otherwise a
:class:`LineProgress` with the same ``update`` / ``set_postfix`` / ``close`` methods, which prints one line
at most every ``every_s`` seconds (and at the end): ``grading: 12/30 (40%), 45 s, ~67 s left, ungraded=0``.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from tqdm import tqdm

LOG_EVERY_S = 30.0


class LineProgress:
    """Progress as lines for logs (same methods as the tqdm bar that it replaces).

    Args:
        total: units of work.
        desc: what is being done (the line's prefix).
        unit: the unit's name, for the final line.
        every_s: the least time between two lines (a line also comes at each further 10% done).
        file: where lines go (default stderr).
    """

    def __init__(
        self, total: int, desc: str, unit: str = "it", every_s: float = LOG_EVERY_S, file: IO[str] | None = None
    ):
        self.total, self.desc, self.unit, self.every_s = total, desc, unit, every_s
        self.file = file or sys.stderr
        self.n = 0
        self.postfix: dict[str, Any] = {}
        self._t0 = self._last = time.monotonic()
        self._last_decile = 0
        self._closed = False
        self._emit(start=True)

    def _line(self) -> str:
        elapsed = time.monotonic() - self._t0
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        left = ""
        if 0 < self.n < self.total:
            left = f", ~{elapsed / self.n * (self.total - self.n):.0f} s left"
        post = "".join(f", {k}={v}" for k, v in self.postfix.items())
        return f"{self.desc}: {self.n}/{self.total}{pct}, {elapsed:.0f} s{left}{post}"

    def _emit(self, start: bool = False) -> None:
        print(
            self._line() if not start else f"{self.desc}: 0/{self.total} {self.unit} to do", file=self.file, flush=True
        )
        self._last = time.monotonic()
        self._shown = (self.n, dict(self.postfix))

    def update(self, n: int = 1) -> None:
        self.n += n
        decile = int(10 * self.n / self.total) if self.total else 0
        if time.monotonic() - self._last >= self.every_s or (decile > self._last_decile and self.n < self.total):
            self._last_decile = decile
            self._emit()

    def set_postfix(self, refresh: bool = False, **kw: Any) -> None:
        self.postfix.update(kw)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._shown != (self.n, self.postfix):  # the final line, unless it is already the last one shown
                self._emit()


def progress_bar(
    total: int, desc: str, unit: str = "it", disable: bool = False, file: IO[str] | None = None, **tqdm_kw: Any
) -> Any:
    """A progress display for ``total`` units: tqdm on a terminal, :class:`LineProgress` otherwise.

    Args:
        total: units of work.
        desc: what is being done.
        unit: the unit's name.
        disable: show nothing (``--no-progress``).
        file: the stream (default stderr).
        tqdm_kw: further tqdm options (terminal only).
    """
    stream = file or sys.stderr
    if disable:
        return tqdm(total=total, disable=True)
    if getattr(stream, "isatty", lambda: False)():
        return tqdm(total=total, desc=desc, unit=unit, file=stream, **tqdm_kw)
    return LineProgress(total, desc, unit, file=stream)
