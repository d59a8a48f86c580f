"""The papers' published tables as data (``eval/paper_tables/*.yaml``), loaded and validated.

Each YAML file is one table: its source, the scale of its numbers, the grader the paper used, column
descriptions, the mapping from each paper column to a harness task and metric (``ours``), and the rows
exactly as published. ``load_paper_tables(paper)`` returns every table of one paper; a table's ``paper`` is the name
of a replication folder (``replications/<paper>/``, :mod:`rubricrl.papers`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from rubricrl.errors import UserError
from rubricrl.papers import paper_names


def __getattr__(name: str) -> Any:
    # ``PAPERS``: the replications' names (rubricrl.papers), discovered on first use.
    if name == "PAPERS":
        return tuple(paper_names())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


TABLES_DIR_ENV = "RUBRICRL_PAPER_TABLES"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskRef(_Strict):
    """One harness task metric that measures a paper column.

    ``factor`` converts our metric to the paper's scale (e.g. 100 for a 0-1 accuracy shown as percent);
    ``judged`` says the task's metric comes from an LLM judge. ``subset`` is set on a candidate that measures only
    part of what the column reports (e.g. ``"N = 10 only"`` for one IFScale density): its value is shown in the
    column, marked, and its delta is never read as comparable.
    """

    task: str
    metric: str
    factor: float = 1.0
    judged: bool = False  # graded by an LLM judge (then the run's judge matters), else programmatic
    subset: str = ""  # non-empty: this task covers only that part of the column's measurement


class Column(_Strict):
    """A paper column: short key as printed, full name, what it measures, and our task candidates."""

    key: str
    name: str
    description: str
    metric_note: str = ""
    ours: tuple[TaskRef, ...] = ()


class Average(_Strict):
    """How the paper's average column is formed (only when it is checkably the mean of other columns)."""

    column: str
    of: tuple[str, ...]
    rule: str = "mean"


class PaperRow(_Strict):
    """One published row: a model and its numbers by column key."""

    model: str
    size: str = ""
    values: dict[str, float]


class PaperTable(_Strict):
    """One published table."""

    id: str
    paper: str
    title: str
    source: dict[str, str]
    scale: str
    paper_scale: str
    paper_size: str
    reference_row: str
    decimals: int = 2
    paper_models: tuple[str, ...] = ()
    grader_match: str | None = None
    grader: str
    grader_short: str
    average: Average | None = None
    columns: tuple[Column, ...]
    rows: tuple[PaperRow, ...]

    @model_validator(mode="after")
    def _consistent(self) -> PaperTable:
        keys = [c.key for c in self.columns]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate column keys in {keys}")
        papers = paper_names()
        if self.paper not in papers:
            raise ValueError(f"paper must be one of {', '.join(papers)} (replications/<paper>/), not {self.paper!r}")
        for row in self.rows:
            unknown = sorted(set(row.values) - set(keys))
            if unknown:
                raise ValueError(f"row {row.model!r} has values for unknown columns {unknown}")
        if self.reference_row not in {r.model for r in self.rows}:
            raise ValueError(f"reference_row {self.reference_row!r} is not one of the rows")
        if self.average is not None:
            missing = [k for k in (self.average.column, *self.average.of) if k not in keys]
            if missing:
                raise ValueError(f"average refers to unknown columns {missing}")
        return self

    @property
    def column_keys(self) -> list[str]:
        return [c.key for c in self.columns]

    def column(self, key: str) -> Column:
        for c in self.columns:
            if c.key == key:
                return c
        raise KeyError(key)

    def row(self, model: str) -> PaperRow:
        for r in self.rows:
            if r.model == model:
                return r
        raise KeyError(model)

    def fmt(self, value: float | None) -> str:
        """Paper-style number: ``decimals`` places, more when the value needs them (0.1077); None -> '—'."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—"
        digits = self.decimals
        while digits < 6 and abs(round(value, digits) - value) > 1e-9:
            digits += 1
        return f"{value:.{digits}f}"


def _repo_root() -> Path | None:
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "common" / "rubricrl").is_dir():
            return parent
    return None


def tables_dir() -> Path:
    """``$RUBRICRL_PAPER_TABLES`` if set, else ``<repo>/eval/paper_tables`` of the checkout."""
    env = os.environ.get(TABLES_DIR_ENV)
    if env:
        return Path(env).expanduser()
    root = _repo_root()
    if root is None:
        raise UserError(f"cannot find eval/paper_tables outside a rubricrl checkout; set {TABLES_DIR_ENV}")
    return root / "eval" / "paper_tables"


def load_table(path: Path) -> PaperTable:
    """Load and validate one table file.

    Raises:
        UserError: the file is missing, is not YAML, or does not match the table schema.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read paper table: {e.strerror}", path=str(path)) from None
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise UserError(
            f"not valid YAML: {getattr(e, 'problem', e)}", path=str(path), line=mark.line + 1 if mark else None
        ) from None
    if not isinstance(raw, dict):
        raise UserError("a paper table file must be a mapping (id, paper, columns, rows, ...)", path=str(path))
    try:
        return PaperTable.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise UserError(f"{where}: {first['msg']} ({len(e.errors())} problem(s))", path=str(path)) from None


def load_paper_tables(paper: str | None = None, directory: Path | None = None) -> list[PaperTable]:
    """All tables (of one paper, when given), in file-name order.

    Args:
        paper: a replication's name (:func:`rubricrl.papers.paper_names`); None for all.
        directory: folder of ``*.yaml`` tables (default :func:`tables_dir`).

    Raises:
        UserError: unknown paper, missing folder, or an invalid table file.
    """
    if paper is not None and paper not in paper_names():
        raise UserError(f"unknown paper {paper!r}; choose one of: {', '.join(paper_names())}")
    folder = directory or tables_dir()
    if not folder.is_dir():
        raise UserError("paper tables folder not found", path=str(folder))
    tables = [load_table(p) for p in sorted(folder.glob("*.yaml"))]
    if paper is not None:
        tables = [t for t in tables if t.paper == paper]
    if not tables:
        raise UserError(f"no paper tables{' for ' + paper if paper else ''} in this folder", path=str(folder))
    return tables
