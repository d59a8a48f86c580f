"""JSONL reading and atomic writing shared by the data loaders and commands.

Lines are split on ``\\n`` only: published files contain U+2028 (LINE SEPARATOR) inside JSON strings,
which ``str.splitlines`` would wrongly treat as a line break.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from rubricrl.errors import Problems, UserError


def iter_jsonl_lines(path: str | Path) -> Iterator[tuple[int, Any, str | None]]:
    """Yield ``(line_number, value, problem)`` per non-blank line; ``problem`` is set for invalid JSON.

    Raises:
        UserError: the file is missing, a directory, or not UTF-8.
    """
    p = Path(path)
    if not p.exists():
        raise UserError("file not found", path=str(p))
    if not p.is_file():
        raise UserError("not a regular file", path=str(p))
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise UserError(f"not valid UTF-8 (byte {e.start})", path=str(p), line=line) from None
    for lineno, line in enumerate(text.split("\n"), start=1):
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
    for lineno, obj, bad in iter_jsonl_lines(path):
        if bad:
            problems.append(f"{path}:{lineno}: {bad}")
        elif not isinstance(obj, dict):
            problems.append(f"{path}:{lineno}: expected a JSON object")
        else:
            out.append((lineno, obj))
    if problems:
        raise Problems(problems)
    return out


def write_jsonl_atomic(path: str | Path, objs: Iterable[dict[str, Any]], overwrite: bool = False) -> int:
    """Write objects as JSONL through a temporary file and a rename; returns the number written.

    Raises:
        UserError: ``path`` exists and ``overwrite`` is False.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise UserError("already exists; not overwritten (pass --force to replace it)", path=str(p))
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    n = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for obj in objs:
                f.write(json.dumps(obj, ensure_ascii=False) + "\n")
                n += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n
