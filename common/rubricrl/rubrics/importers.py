"""Importers: published benchmark records -> :class:`~rubricrl.rubrics.schema.Rubric`.

Two formats are read exactly as published, unchanged:

* **HealthBench** (OpenAI simple-evals): one JSON object per line with ``prompt`` (list of
  ``{role, content}`` messages), ``rubrics`` (list of ``{criterion, points, tags}``), ``example_tags``,
  ``prompt_id``, ``ideal_completions_data`` (nullable) and sometimes ``canary``. Each record becomes an
  instance-scope rubric ``id = prompt_id``, ``category = "healthbench"``, aggregated by
  ``points_ratio``; rubric item ``i`` (0-based, in file order) becomes criterion ``c{i:02d}``
  (``c00``, ``c01``, ...), so a criterion id always points back to its list index in the record.
  ``example_tags`` become the rubric's ``tags``; each item's ``tags`` its criterion's tags.
* **WritingBench**: one JSON object per line with ``index``, ``domain1``, ``domain2``, ``lang``,
  ``query`` and a ``checklist`` of 5 ``{name, criteria_description, "1-2", "3-4", "5-6", "7-8", "9-10"}``.
  Each record becomes rubric ``writingbench-{index}``; checklist item ``i`` becomes criterion
  ``c{i:02d}`` with text ``"{name}: {criteria_description}"``, weight 1 and tiers scored 2, 4, 6, 8, 10
  labelled ``"1-2"`` .. ``"9-10"`` (the band descriptions as tier descriptions) on the raw scale
  ``(1, 10)`` the WritingBench judge answers in. The rubric's tags are ``domain1:``, ``domain2:`` and
  ``lang:``.

The ``load_*_jsonl`` functions check every record and raise :class:`~rubricrl.errors.Problems` with
one ``path:line: what is wrong`` per bad line; every record keeps its raw dict so writers can re-emit
it unchanged.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from rubricrl.errors import Problems
from rubricrl.jsonl import iter_jsonl  # noqa: F401  (re-exported: loaders import it from here)
from rubricrl.types import AggregationSpec, Criterion, Rubric, Tier

logger = logging.getLogger(__name__)

WRITINGBENCH_BANDS: tuple[tuple[str, float], ...] = (("1-2", 2), ("3-4", 4), ("5-6", 6), ("7-8", 8), ("9-10", 10))
WRITINGBENCH_SCALE: tuple[float, float] = (1, 10)


def criterion_id(index: int) -> str:
    """Stable criterion id for the ``index``-th (0-based) item of an imported record."""
    return f"c{index:02d}"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _nonempty_str(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def kind_of(v: Any) -> str:
    """What a YAML/JSON author would call the type of ``v``, with short scalars shown."""
    if isinstance(v, (datetime.date, datetime.datetime)):
        return f"a date {v} (quote it to keep it as text)"
    names = {
        type(None): "null",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }
    shown = f" {v!r}" if isinstance(v, (str, int, float)) and not isinstance(v, bool) and len(repr(v)) < 40 else ""
    return names.get(type(v), type(v).__name__) + shown


_kind = kind_of


# --------------------------------------------------------------------------------------------- JSONL


class RecordError(ValueError):
    """A malformed benchmark record; ``problems`` holds one ``field: what is wrong`` per issue."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def _pydantic_problems(err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        out.append(f"{where}: {msg}" if where else msg)
    return out


# --------------------------------------------------------------------------------------- HealthBench


@dataclass
class HealthBenchExample:
    """One HealthBench example.

    Attributes:
        prompt_id: the example's id (also the rubric id).
        prompt: the conversation, a list of ``{"role", "content"}`` messages.
        rubric: the converted rubric.
        example_tags: example-level tags (``theme:...``, ``physician_agreed_category:...``).
        ideal_completion: the physician-written completion, when the record has one.
        raw: the record exactly as read (re-emit it with ``json.dumps(raw)``).
    """

    prompt_id: str
    prompt: list[dict[str, str]]
    rubric: Rubric
    example_tags: list[str]
    ideal_completion: str | None
    raw: dict[str, Any] = field(repr=False)


def healthbench_problems(record: Any) -> list[str]:
    """Everything wrong with a HealthBench record, as ``field: what is wrong`` strings (empty if fine)."""
    if not isinstance(record, dict):
        return [f"expected a JSON object, got {_kind(record)}"]
    out: list[str] = []
    if not _nonempty_str(record.get("prompt_id")):
        out.append("prompt_id: missing or not a non-empty string")
    prompt = record.get("prompt")
    if not isinstance(prompt, list) or not prompt:
        got = "an empty list" if prompt == [] else _kind(prompt)
        out.append(f"prompt: expected a non-empty list of {{role, content}} messages, got {got}")
    else:
        for i, m in enumerate(prompt):
            if not isinstance(m, dict) or not _nonempty_str(m.get("role")) or not isinstance(m.get("content"), str):
                out.append(f"prompt[{i}]: expected {{role: str, content: str}}, got {json.dumps(m)[:80]}")
    items = record.get("rubrics")
    if not isinstance(items, list) or not items:
        got = "an empty list" if items == [] else _kind(items)
        out.append(f"rubrics: expected a non-empty list of {{criterion, points, tags}}, got {got}")
        items = []
    positive = False
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            out.append(f"rubrics[{i}]: expected an object, got {_kind(it)}")
            continue
        if not _nonempty_str(it.get("criterion")):
            out.append(f"rubrics[{i}].criterion: empty or missing criterion text")
        pts = it.get("points")
        if not _is_number(pts):
            out.append(f"rubrics[{i}].points: expected a finite number, got {json.dumps(pts)[:40]}")
        elif pts > 0:
            positive = True
        tags = it.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            out.append(f"rubrics[{i}].tags: expected a list of strings")
    if items and not positive and not any("points" in p for p in out):
        out.append("rubrics: no item has positive points (the score denominator would be zero)")
    tags = record.get("example_tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        out.append("example_tags: expected a list of strings")
    icd = record.get("ideal_completions_data")
    if icd is not None and not isinstance(icd, dict):
        out.append(f"ideal_completions_data: expected an object or null, got {_kind(icd)}")
    return out


def rubric_from_healthbench(record: dict[str, Any], source: str = "") -> Rubric:
    """Convert a HealthBench record to a rubric (see the module docstring for the mapping).

    Raises:
        RecordError: the record is malformed (``problems`` lists every issue).
    """
    problems = healthbench_problems(record)
    if problems:
        raise RecordError(problems)
    criteria = [
        Criterion(id=criterion_id(i), text=it["criterion"], points=it["points"], tags=tuple(it.get("tags", [])))
        for i, it in enumerate(record["rubrics"])
    ]
    try:
        return Rubric(
            id=record["prompt_id"],
            scope="instance",
            category="healthbench",
            criteria=tuple(criteria),
            aggregation=AggregationSpec(name="points_ratio"),
            tags=tuple(record.get("example_tags", [])),
            source=source,
        )
    except ValidationError as e:
        raise RecordError(_pydantic_problems(e)) from None


def healthbench_example(record: dict[str, Any], source: str = "") -> HealthBenchExample:
    """Build a :class:`HealthBenchExample` from a record (raises RecordError if malformed)."""
    rubric = rubric_from_healthbench(record, source)
    icd = record.get("ideal_completions_data")
    ideal = icd.get("ideal_completion") if isinstance(icd, dict) else None
    return HealthBenchExample(
        prompt_id=record["prompt_id"],
        prompt=[dict(m) for m in record["prompt"]],
        rubric=rubric,
        example_tags=list(record.get("example_tags", [])),
        ideal_completion=ideal if isinstance(ideal, str) else None,
        raw=record,
    )


T = TypeVar("T")


def _load_records(
    path: str | Path,
    convert: Callable[[Any, str], T],
    key: Callable[[T, Any], str],
    what: str,
    shown: Callable[[T, Any], Any] | None = None,
) -> list[T]:
    """Convert every JSONL record; collect ``path:line`` problems (bad JSON, bad records, duplicate keys).

    Raises:
        Problems: one line per problem, all of them.
    """
    out: list[T] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for lineno, rec, bad in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if bad:
            problems.append(f"{where}: {bad}")
            continue
        try:
            item = convert(rec, where)
        except RecordError as e:
            problems.extend(f"{where}: {p}" for p in e.problems)
            continue
        k = key(item, rec)
        if k in seen:
            label = shown(item, rec) if shown else k
            problems.append(f"{where}: {what}: duplicate {label!r} (first at line {seen[k]})")
            continue
        seen[k] = lineno
        out.append(item)
    if problems:
        raise Problems(problems)
    return out


def load_healthbench_jsonl(path: str | Path) -> list[HealthBenchExample]:
    """Read a HealthBench JSONL file (as published) into examples.

    Args:
        path: the JSONL file.

    Returns:
        One example per non-blank line, in file order.

    Raises:
        Problems: one ``path:line: ...`` per bad line (all of them), including duplicate ``prompt_id``.
        UserError: the file is missing, empty or not UTF-8.
    """
    out = _load_records(
        path,
        lambda rec, where: healthbench_example(rec, source=where),
        key=lambda ex, rec: ex.prompt_id,
        what="prompt_id",
    )
    logger.info("loaded %d HealthBench examples from %s", len(out), path)
    return out


# -------------------------------------------------------------------------------------- WritingBench


@dataclass
class WritingBenchExample:
    """One WritingBench query with its instance rubric (unpacks as ``query, rubric, meta``).

    Attributes:
        query: the writing request.
        rubric: the converted rubric (``writingbench-{index}``).
        meta: ``index``, ``domain1``, ``domain2``, ``lang``.
        raw: the record exactly as read.
    """

    query: str
    rubric: Rubric
    meta: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)

    def __iter__(self) -> Iterator[Any]:
        """Unpack as ``query, rubric, meta``."""
        return iter((self.query, self.rubric, self.meta))


def writingbench_problems(record: Any) -> list[str]:
    """Everything wrong with a WritingBench record, as ``field: what is wrong`` strings."""
    if not isinstance(record, dict):
        return [f"expected a JSON object, got {_kind(record)}"]
    out: list[str] = []
    idx = record.get("index")
    if not (isinstance(idx, int) and not isinstance(idx, bool)) and not _nonempty_str(idx):
        out.append(f"index: expected an integer or string, got {json.dumps(idx)[:40]}")
    if not _nonempty_str(record.get("query")):
        out.append("query: missing or empty")
    for key in ("domain1", "domain2", "lang"):
        if key in record and not isinstance(record[key], str):
            out.append(f"{key}: expected a string, got {_kind(record[key])}")
    checklist = record.get("checklist")
    if not isinstance(checklist, list) or not checklist:
        out.append(f"checklist: expected a non-empty list of criteria, got {_kind(checklist)}")
        return out
    for i, it in enumerate(checklist):
        if not isinstance(it, dict):
            out.append(f"checklist[{i}]: expected an object, got {_kind(it)}")
            continue
        for key in ("name", "criteria_description") + tuple(b for b, _ in WRITINGBENCH_BANDS):
            if not _nonempty_str(it.get(key)):
                out.append(f"checklist[{i}].{key}: missing or empty")
        extra = sorted(set(it) - {"name", "criteria_description"} - {b for b, _ in WRITINGBENCH_BANDS})
        if extra:
            out.append(f"checklist[{i}]: unknown keys {extra}")
    return out


def rubric_from_writingbench(record: dict[str, Any], source: str = "") -> Rubric:
    """Convert a WritingBench record to a rubric (raises RecordError listing every problem)."""
    problems = writingbench_problems(record)
    if problems:
        raise RecordError(problems)
    criteria = []
    for i, it in enumerate(record["checklist"]):
        tiers = tuple(Tier(score=s, label=band, description=it[band]) for band, s in WRITINGBENCH_BANDS)
        criteria.append(
            Criterion(
                id=criterion_id(i),
                text=f"{it['name']}: {it['criteria_description']}",
                weight=1.0,
                tiers=tiers,
                scale=WRITINGBENCH_SCALE,
            )
        )
    tags = tuple(f"{k}:{record[k]}" for k in ("domain1", "domain2", "lang") if record.get(k))
    try:
        return Rubric(
            id=f"writingbench-{record['index']}",
            scope="instance",
            category="writingbench",
            criteria=tuple(criteria),
            tags=tags,
            source=source,
        )
    except ValidationError as e:
        raise RecordError(_pydantic_problems(e)) from None


def load_writingbench_jsonl(path: str | Path) -> list[WritingBenchExample]:
    """Read a WritingBench JSONL file (as published) into examples.

    Raises:
        Problems: one ``path:line: ...`` per bad line (all of them), including duplicate ``index``.
        UserError: the file is missing, empty or not UTF-8.
    """

    def convert(rec: Any, where: str) -> WritingBenchExample:
        rubric = rubric_from_writingbench(rec, source=where)
        meta = {k: rec.get(k) for k in ("index", "domain1", "domain2", "lang")}
        return WritingBenchExample(query=rec["query"], rubric=rubric, meta=meta, raw=rec)

    out = _load_records(
        path, convert, key=lambda ex, rec: ex.rubric.id, what="index", shown=lambda ex, rec: rec["index"]
    )
    logger.info("loaded %d WritingBench queries from %s", len(out), path)
    return out
