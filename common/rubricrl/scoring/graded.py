"""The graded interchange format: one graded HealthBench example per JSON line.

Each line holds the example's fields exactly as published (``prompt``, ``rubrics``, ``example_tags``,
``prompt_id``, ``ideal_completions_data`` and any others, unchanged) plus:

* ``response``: the assistant turn that was graded (a string);
* ``grades``: a list aligned with ``rubrics`` (same length, same order), each
  ``{"criteria_met": true|false|null, "explanation": str}`` plus optional ``judge``, ``attempts``,
  ``error``, ``score``; ``null`` means ungraded (the judge gave no usable decision);
* ``judge`` (optional): a summary of the judge config (``model``, ``template_sha256``, ``mode``, ...).

Crash safety: :class:`GradedWriter` appends one line at a time with flush + fsync, so a crash can only
leave a truncated *last* line. :func:`read_graded` reports such a line (``GradedFile.truncated_tail``)
instead of failing, and a resuming writer first rewrites the file without it, atomically (temporary
file + rename): a complete line is never lost.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rubricrl.errors import Problems, UserError
from rubricrl.jsonl import write_atomic
from rubricrl.rubrics.importers import healthbench_problems, rubric_from_healthbench
from rubricrl.types import Criterion, Verdict

log = logging.getLogger(__name__)

ADDED_FIELDS = ("response", "grades", "judge")
GRADE_OPTIONAL = {"judge": str, "attempts": int, "error": (str, type(None)), "score": (int, float, type(None))}


@dataclass
class GradedRecord:
    """One graded example.

    Attributes:
        data: the whole JSON object of the line (example fields, ``response``, ``grades``, ``judge``).
        line: 1-based line number in the file it was read from (0 when built in memory).
    """

    data: dict[str, Any]
    line: int = 0
    _criteria: tuple[Criterion, ...] | None = field(default=None, repr=False, compare=False)

    @property
    def prompt_id(self) -> str:
        return self.data["prompt_id"]

    @property
    def response(self) -> str:
        return self.data["response"]

    @property
    def grades(self) -> list[dict[str, Any]]:
        return self.data["grades"]

    @property
    def example_tags(self) -> list[str]:
        return list(self.data.get("example_tags") or [])

    @property
    def n_ungraded(self) -> int:
        return sum(1 for g in self.grades if g.get("criteria_met") is None)

    def example(self) -> dict[str, Any]:
        """The published example fields only (without ``response``, ``grades``, ``judge``)."""
        return {k: v for k, v in self.data.items() if k not in ADDED_FIELDS}

    def criteria(self) -> tuple[Criterion, ...]:
        """The rubric items as criteria, via the HealthBench importer (ids follow the ``rubrics`` index)."""
        if self._criteria is None:
            self._criteria = rubric_from_healthbench(self.example()).criteria
        return self._criteria

    def verdicts(self) -> list[Verdict]:
        """One verdict per rubric item, aligned with :meth:`criteria`."""
        return [Verdict.from_json(c.id, g) for c, g in zip(self.criteria(), self.grades)]

    def to_line(self) -> str:
        return json.dumps(self.data, ensure_ascii=False) + "\n"


def make_record(
    example: dict[str, Any], response: str, verdicts: Iterable[Verdict], judge: dict[str, Any] | None = None
) -> GradedRecord:
    """Build a graded record from a published example, the graded response and its verdicts."""
    data = {k: v for k, v in example.items() if k not in ADDED_FIELDS}
    data["response"] = response
    data["grades"] = [v.to_json() for v in verdicts]
    if judge is not None:
        data["judge"] = judge
    return GradedRecord(data)


def check_record(obj: Any) -> list[str]:
    """Problems with one decoded line (empty when it is a valid graded record)."""
    if not isinstance(obj, dict):
        return [f"expected a JSON object, got {type(obj).__name__}"]
    out = healthbench_problems({k: v for k, v in obj.items() if k not in ADDED_FIELDS})
    rubrics = obj.get("rubrics") if isinstance(obj.get("rubrics"), list) else None
    if not isinstance(obj.get("response"), str):
        out.append("'response' missing or not a string")
    grades = obj.get("grades")
    if not isinstance(grades, list):
        out.append("'grades' missing or not a list")
    else:
        if rubrics is not None and len(grades) != len(rubrics):
            out.append(f"'grades' has {len(grades)} entries but 'rubrics' has {len(rubrics)}; they must be aligned")
        for i, g in enumerate(grades):
            out.extend(f"grades[{i}]: {p}" for p in _check_grade(g))
    judge = obj.get("judge")
    if judge is not None and not isinstance(judge, dict):
        out.append("'judge' must be an object (the judge config summary)")
    return out


def _check_grade(g: Any) -> list[str]:
    if not isinstance(g, dict):
        return [f"expected an object, got {type(g).__name__}"]
    out = []
    met = g.get("criteria_met", 0)
    if not (met is None or isinstance(met, bool)):
        out.append("'criteria_met' must be true, false or null")
    if not isinstance(g.get("explanation", ""), str):
        out.append("'explanation' must be a string")
    for key, typ in GRADE_OPTIONAL.items():
        if key in g and (not isinstance(g[key], typ) or (typ is int and isinstance(g[key], bool))):
            out.append(f"{key!r} has the wrong type ({type(g[key]).__name__})")
    return out


@dataclass
class GradedFile:
    """A graded file as read.

    Attributes:
        path: the file.
        records: complete, valid records in file order.
        truncated_tail: the last line was cut off (a crash while writing it); it is not in ``records``.
        good_bytes: length of the file up to and including the last complete line.
        ends_with_newline: whether the complete part ends with a newline.
    """

    path: Path
    records: list[GradedRecord]
    truncated_tail: bool = False
    good_bytes: int = 0
    ends_with_newline: bool = True

    def by_prompt_id(self) -> dict[str, GradedRecord]:
        return {r.prompt_id: r for r in self.records}


def read_graded(path: str | Path) -> GradedFile:
    """Read and validate a graded file.

    A last line without a newline that is not valid JSON is taken as cut off by a crash: it is
    reported (logged and flagged in the result), not an error.

    Raises:
        Problems: one ``path:line: what is wrong`` per invalid line, misaligned grades, duplicate
            ``prompt_id``.
        UserError: the file is missing or not UTF-8.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError("file not found" if not p.exists() else "not a regular file", path=str(p))
    raw = p.read_bytes()
    lines = raw.split(b"\n")
    tail = lines.pop()  # after the last newline: b"" when the file ends with one
    problems: list[str] = []
    records: list[GradedRecord] = []
    seen: dict[str, int] = {}
    truncated = False
    good = len(raw) - len(tail)
    ends_nl = True
    numbered = [(i + 1, ln) for i, ln in enumerate(lines)]
    if tail.strip():
        try:
            json.loads(tail.decode("utf-8"))
            numbered.append((len(lines) + 1, tail))
            good, ends_nl = len(raw), False
        except (UnicodeDecodeError, json.JSONDecodeError):
            truncated = True
            log.warning("%s:%d: last line is incomplete (an interrupted write?); it is not read", p, len(lines) + 1)
    for lineno, ln in numbered:
        if not ln.strip():
            continue
        where = f"{p}:{lineno}"
        try:
            obj = json.loads(ln.decode("utf-8"))
        except UnicodeDecodeError:
            problems.append(f"{where}: not valid UTF-8")
            continue
        except json.JSONDecodeError as e:
            problems.append(f"{where}: invalid JSON ({e.msg} at column {e.colno})")
            continue
        errs = check_record(obj)
        if errs:
            problems.extend(f"{where}: {e}" for e in errs)
            continue
        if obj["prompt_id"] in seen:
            problems.append(
                f"{where}: duplicate prompt_id {obj['prompt_id']!r} (first on line {seen[obj['prompt_id']]})"
            )
            continue
        seen[obj["prompt_id"]] = lineno
        records.append(GradedRecord(obj, lineno))
    if problems:
        raise Problems(problems)
    return GradedFile(p, records, truncated, good, ends_nl)


def rewrite_graded(path: str | Path, records: Iterable[GradedRecord]) -> None:
    """Replace a graded file with ``records``, atomically."""
    write_atomic(path, (r.to_line() for r in records))


class GradedWriter:
    """Appends graded records, one durable line at a time.

    Opening an existing file resumes it: a truncated last line is dropped by rewriting the complete
    part atomically, and a missing final newline is added before appending.
    """

    def __init__(self, path: str | Path, existing: GradedFile | None = None):
        self.path = Path(path)
        if existing is not None and existing.truncated_tail:
            log.warning("%s: rewriting without its incomplete last line", self.path)
            rewrite_graded(self.path, existing.records)
        self._f = open(self.path, "a", encoding="utf-8")
        if existing is not None and not existing.truncated_tail and not existing.ends_with_newline:
            self._f.write("\n")
        self.n_written = 0

    def append(self, record: GradedRecord) -> None:
        """Write one record as a line, flush and fsync before returning."""
        self._f.write(record.to_line())
        self._f.flush()
        os.fsync(self._f.fileno())
        self.n_written += 1

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> GradedWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
