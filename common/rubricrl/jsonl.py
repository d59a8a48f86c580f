"""JSONL reading and durable writing: the one implementation every loader and command uses.

Lines are split on ``\\n`` only: JSON allows U+2028 / U+2029 / U+0085 unescaped inside strings (the
HealthBench-500 copy has them), and ``str.splitlines`` would wrongly break records there.
Writes go through a temporary file in the same folder, fsync and a rename, so a crash leaves either the
old file or the new one, never half of each.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rubricrl.config_io import read_text
from rubricrl.errors import Problems, UserError


def iter_jsonl(path: str | Path, *, allow_empty: bool = False) -> Iterator[tuple[int, Any, str | None]]:
    """Yield ``(line_number, value, problem)`` for each non-blank line.

    ``problem`` is set (and ``value`` is None) when the line is not valid JSON.

    Raises:
        UserError: the file is missing, a directory, unreadable, not UTF-8, or empty (unless ``allow_empty``).
    """
    p = Path(path)
    if allow_empty and p.is_file() and p.stat().st_size == 0:
        return
    try:
        text = read_text(p)
    except OSError as e:
        raise UserError(f"cannot read file: {e.strerror or e}", path=str(p)) from None
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line), None
        except json.JSONDecodeError as e:
            yield lineno, None, f"invalid JSON: {e.msg} (column {e.colno})"
        except RecursionError:
            yield lineno, None, "invalid JSON: nested too deeply"


def read_jsonl_objects(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """All ``(line, object)`` pairs of a JSONL file of objects.

    Raises:
        Problems: one ``path:line: ...`` per invalid line.
    """
    out, problems = [], []
    for lineno, obj, bad in iter_jsonl(path):
        if bad:
            problems.append(f"{path}:{lineno}: {bad}")
        elif not isinstance(obj, dict):
            problems.append(f"{path}:{lineno}: expected a JSON object")
        else:
            out.append((lineno, obj))
    if problems:
        raise Problems(problems)
    return out


def read_jsonl(path: str | Path, *, missing_ok: bool = True) -> list[Any]:
    """The records of a JSONL file this project wrote (stage outputs, logs, rollouts), split on ``\\n`` only.

    A torn last line (a writer killed mid-line: no newline at the end and not valid JSON) is skipped, so a
    resumed stage or a report over an interrupted run still reads what was written before it.

    Args:
        path: the file.
        missing_ok: ``[]`` for a missing file (else a ``UserError``).

    Raises:
        Problems: an invalid line other than a torn last one (``path:line: ...`` for each).
    """
    p = Path(path)
    if missing_ok and not p.exists():
        return []
    rows = list(iter_jsonl(p, allow_empty=True))
    torn = rows and rows[-1][2] is not None and not read_text(p).endswith("\n")
    if torn:
        rows = rows[:-1]
    problems = [f"{p}:{lineno}: {bad}" for lineno, _, bad in rows if bad]
    if problems:
        raise Problems(problems)
    return [value for _, value, _ in rows]


def append_jsonl(path: str | Path, objs: Iterable[Any]) -> int:
    """Append objects as JSON lines (UTF-8, unescaped; the folder is created); returns the number written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with p.open("a", encoding="utf-8") as f:
        for obj in objs:
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
            n += 1
    return n


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _mode_for(p: Path) -> int:
    """Permission bits for ``p``: those of the existing file, else what ``open`` would give under the umask."""
    try:
        return p.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(path: str | Path, lines: Iterable[str]) -> None:
    """Write ``lines`` (each ending in a newline) to ``path`` through a temporary file and a rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        os.fchmod(fd, _mode_for(p))  # mkstemp makes 0600; keep the file's mode (or the umask's default)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(p.parent)


def write_jsonl_atomic(path: str | Path, objs: Iterable[dict[str, Any]], overwrite: bool = False) -> int:
    """Write objects as JSONL atomically; returns the number written.

    Raises:
        UserError: ``path`` exists and ``overwrite`` is False.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise UserError("already exists; not overwritten (pass --force to replace it)", path=str(p))
    n = 0

    def lines() -> Iterator[str]:
        nonlocal n
        for obj in objs:
            n += 1
            yield json.dumps(obj, ensure_ascii=False) + "\n"

    write_atomic(p, lines())
    return n


def cut_step_records(path: str | Path, done_steps: int) -> tuple[int, int]:
    """Keep the records of a per-step log (``rollouts.jsonl``) whose ``step`` is at most ``done_steps``.

    A training stage resumed from the checkpoint of step ``done_steps`` repeats the steps after it; the
    rows an earlier attempt wrote for them are cut, so no step appears twice. The file is rewritten
    (atomically, mode kept) only when every complete line is a JSON object with an integer ``step``, i.e.
    the log's own records; a torn last line (text after the last newline) is dropped.

    Returns:
        ``(kept, cut)`` record counts.

    Raises:
        UserError: a line is not such a record (the file is left exactly as it was).
    """
    p = Path(path)
    raw = p.read_bytes()
    lines = raw.split(b"\n")
    torn = lines.pop() if lines else b""
    keep: list[bytes] = []
    n = 0
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        n += 1
        try:
            step = int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            raise UserError(
                f"line {i} is not a per-step record with a 'step'; not cutting it back to the "
                "resumed step (is this the stage's own file?)",
                path=str(p),
                line=i,
            ) from None
        if step <= done_steps:
            keep.append(line)
    if len(keep) < n or torn.strip():
        write_atomic(p, (x.decode("utf-8") + "\n" for x in keep))
    return len(keep), n - len(keep)
