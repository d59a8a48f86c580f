"""Load rubrics from YAML banks and JSONL files, with every problem reported as ``path:line: ...``.

YAML (``.yaml`` / ``.yml``), one of two shapes:

* a **bank**: a mapping with
    ``bank:`` (optional) ``{name, version, description}``;
    ``defaults:`` (optional) any rubric fields except ``id``, ``criteria`` and ``source``, e.g.
    ``scope``, ``category``, ``aggregation``, ``tags``; each applies to every rubric that does not
    set that field itself (a rubric's own value replaces the default, nothing is merged);
    ``rubrics:`` a list of rubrics (the fields of ``rubricrl.rubrics.schema.Rubric``)::

        bank: {name: stage1-if, version: "1", description: Stage-1 instruction-following constraints}
        defaults: {scope: task, category: stage1/instruction_following}
        rubrics:
          - id: word-limit-120
            instruction: Answer in at most 120 words.
            criteria:
              - {id: limit, text: At most 120 words., kind: programmatic, verifier: word_count, args: {max_words: 120}}

* a **single rubric**: a mapping with ``id`` and ``criteria`` at the top level.

JSONL (``.jsonl``): one JSON object per non-blank line, each one of

* a rubric in our schema (has ``criteria``);
* a HealthBench record, as published (has ``rubrics``; see ``rubricrl.rubrics.importers``);
* a WritingBench record, as published (has ``checklist``).

Every loaded rubric's ``source`` is ``"path:line"`` (the line where the rubric starts); a ``source``
written in the file is kept after it in parentheses: ``"banks/a.yaml:12 (Rubicon sec. 3)"``.

Everything is checked at load time (schema, the extra checks in ``rubricrl.rubrics.validate``,
rubric ids unique across all files loaded together); :func:`load_rubrics` raises
:class:`~rubricrl.errors.Problems` listing every problem in every file.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from rubricrl.config_io import line_of, load_yaml_with_lines
from rubricrl.errors import Problems, UserError
from rubricrl.rubrics import importers
from rubricrl.rubrics.validate import (
    NO_POSITIVE,
    aggregation_problems,
    duplicate_rubric_ids,
    loc_str,
    raw_rubric_problems,
    schema_problems,
    verifier_problems,
)
from rubricrl.types import Rubric

logger = logging.getLogger(__name__)
_kind = importers.kind_of

SUFFIXES = (".yaml", ".yml", ".jsonl")
_BANK_KEYS = ("bank", "defaults", "rubrics")
_NO_DEFAULT = ("id", "criteria", "source")
_MAX_NODES = 200_000  # per rubric; YAML aliases can expand exponentially ("billion laughs"): stop early
LineFor = Callable[[tuple], "int | None"]


class BankInfo(BaseModel):
    """The optional ``bank:`` header of a bank file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = ""
    version: str = ""
    description: str = ""


@dataclass
class LoadResult:
    """Everything :func:`load_paths` found.

    Attributes:
        rubrics: valid rubrics, in file order then in-file order.
        files: the rubric files read.
        problems: one ``path:line: what is wrong`` per problem.
        banks: file -> its ``bank:`` header, for bank files that have one.
        locations: ``"path:line"`` of each rubric in ``rubrics``.
    """

    rubrics: list[Rubric] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    banks: dict[str, BankInfo] = field(default_factory=dict)
    locations: list[str] = field(default_factory=list)


class _TooLarge(Exception):
    pass


def _at(path: str, line: int | None, msg: str) -> str:
    return f"{path}:{line}: {msg}" if line else f"{path}: {msg}"


def _plain(obj: Any, budget: list[int]) -> Any:
    """Copy of a line-annotated tree without the bookkeeping keys, bounded in size."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooLarge
    if isinstance(obj, dict):
        return {k: _plain(v, budget) for k, v in obj.items() if k not in ("__line__", "__lines__")}
    if isinstance(obj, list):
        return [_plain(v, budget) for v in obj]
    return obj


def _build(
    path: str, node: dict, plain: dict, line_for: LineFor, label: str, from_defaults: frozenset = frozenset()
) -> tuple[Rubric | None, list[str]]:
    """Validate one rubric mapping; return it (or None) and its problems."""
    rid = plain.get("id")
    prefix = f"rubric {rid!r}" if isinstance(rid, str) and rid.strip() else label
    start = line_for(())
    authored = plain.get("source")
    data = dict(plain)
    if isinstance(authored, str) or authored is None:
        loc = f"{path}:{start}" if start else path
        data["source"] = f"{loc} ({authored})" if authored else loc

    def fmt(loc: tuple, msg: str) -> str:
        shown = loc[:-1] if msg.startswith("key ") and msg.endswith("(quote it)") else loc
        if loc and loc[0] in from_defaults:
            return _at(path, line_for(loc), f"defaults.{loc_str(shown)}: {msg}")
        return _at(path, line_for(loc), f"{prefix}: {loc_str(shown) + ': ' if shown else ''}{msg}")

    raw = raw_rubric_problems(plain) + verifier_problems(plain)
    problems = [fmt(loc, msg) for loc, msg in raw]
    # Messages the raw checks already gave (more precisely) are not repeated from the schema.
    covered = [m for m in ("duplicate criterion id", NO_POSITIVE) if any(m in msg for _, msg in raw)]
    try:
        rubric: Rubric | None = Rubric.model_validate(data)
    except ValidationError as e:
        rubric = None
        for loc, msg in schema_problems(e, plain):
            if not any(m in msg for m in covered):
                problems.append(fmt(loc, msg))
    if rubric is not None:
        problems += [fmt(loc, msg) for loc, msg in aggregation_problems(rubric)]
    return (rubric if not problems else None), problems


def _load_bank(path: str, tree: dict, result: LoadResult) -> list[tuple[Rubric, str]]:
    problems = result.problems
    lines = tree.get("__lines__", {})
    for key in tree:
        if key not in _BANK_KEYS and key not in ("__line__", "__lines__"):
            close = difflib.get_close_matches(str(key), _BANK_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                _at(path, lines.get(key), f"unknown top-level key {key!r} ({hint}a bank has: bank, defaults, rubrics)")
            )
    if "bank" in tree:
        info = tree["bank"]
        if not isinstance(info, dict):
            problems.append(_at(path, lines.get("bank"), "bank: expected a mapping {name, version, description}"))
        else:
            plain = _plain(info, [_MAX_NODES])
            if isinstance(plain.get("version"), (int, float)) and not isinstance(plain.get("version"), bool):
                plain["version"] = str(plain["version"])
            try:
                result.banks[path] = BankInfo.model_validate(plain)
            except ValidationError as e:
                for err in e.errors():
                    loc = ("bank",) + tuple(err["loc"])
                    msg = (
                        "unknown key (allowed: name, version, description)"
                        if err["type"] == "extra_forbidden"
                        else err["msg"]
                    )
                    problems.append(_at(path, line_of(tree, loc), f"{loc_str(loc)}: {msg}"))
    defaults: dict = {}
    if tree.get("defaults") is not None:
        d = tree["defaults"]
        if not isinstance(d, dict):
            problems.append(_at(path, lines.get("defaults"), "defaults: expected a mapping of rubric fields"))
        else:
            for k in d:
                if k in ("__line__", "__lines__"):
                    continue
                if k in _NO_DEFAULT or k not in Rubric.model_fields:
                    allowed = ", ".join(f for f in Rubric.model_fields if f not in _NO_DEFAULT)
                    problems.append(
                        _at(
                            path,
                            d["__lines__"].get(k),
                            f"defaults.{k}: not a default rubric field (allowed: {allowed})",
                        )
                    )
                else:
                    defaults[k] = d[k]
    items = tree.get("rubrics")
    if not isinstance(items, list):
        problems.append(_at(path, lines.get("rubrics"), f"rubrics: expected a list of rubrics, got {_kind(items)}"))
        return []
    if not items:
        problems.append(_at(path, lines.get("rubrics"), "rubrics: the list is empty"))
    out = []
    for i, node in enumerate(items):
        if not isinstance(node, dict):
            problems.append(
                _at(path, lines.get("rubrics"), f"rubrics[{i}]: expected a mapping (a rubric), got {_kind(node)}")
            )
            continue
        own = set(node) - {"__line__", "__lines__"}
        from_defaults = frozenset(k for k in defaults if k not in own)
        merged = dict(node)
        merged["__lines__"] = dict(node.get("__lines__", {}))
        for k in from_defaults:
            merged[k] = defaults[k]
            merged["__lines__"][k] = tree["defaults"]["__lines__"].get(k)
        plain = _plain(merged, [_MAX_NODES])
        rubric, probs = _build(
            path, merged, plain, lambda loc, m=merged: line_of(m, loc), f"rubrics[{i}]", from_defaults
        )
        problems.extend(probs)
        if rubric is not None:
            out.append((rubric, f"{path}:{node.get('__line__')}"))
    return out


def _yaml_tree(path: str) -> Any:
    """``load_yaml_with_lines``, adding where an unterminated construct started to syntax errors."""
    try:
        return load_yaml_with_lines(path)
    except UserError as e:
        if not e.message.startswith("invalid YAML"):
            raise
        try:
            yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except yaml.MarkedYAMLError as detail:
            mark = detail.context_mark
            if detail.context and mark is not None and mark.line + 1 != e.line:
                raise UserError(
                    f"{e.message} ({detail.context} at line {mark.line + 1})", path=e.path, line=e.line
                ) from None
        except Exception:  # noqa: BLE001 - only used to enrich the message
            pass
        raise


def _load_yaml(path: str, result: LoadResult) -> list[tuple[Rubric, str]]:
    tree = _yaml_tree(path)
    if tree is None:
        result.problems.append(_at(path, None, "no content (only comments?); expected a bank or a rubric"))
        return []
    if isinstance(tree, list):
        result.problems.append(
            _at(path, 1, "top level is a list; a bank file is a mapping: put the list under `rubrics:`")
        )
        return []
    if not isinstance(tree, dict):
        result.problems.append(
            _at(
                path,
                1,
                f"top level is {_kind(tree)}; expected a mapping "
                "(a bank with `rubrics:`, or a rubric with `id:` and `criteria:`)",
            )
        )
        return []
    if "rubrics" in tree:
        return _load_bank(path, tree, result)
    if "criteria" in tree or "id" in tree:
        plain = _plain(tree, [_MAX_NODES])
        rubric, probs = _build(path, tree, plain, lambda loc: line_of(tree, loc), "rubric")
        result.problems.extend(probs)
        return [(rubric, f"{path}:{tree.get('__line__')}")] if rubric is not None else []
    keys = ", ".join(str(k) for k in tree if k not in ("__line__", "__lines__"))
    result.problems.append(
        _at(
            path,
            tree.get("__line__"),
            f"neither a bank (needs `rubrics:`) nor a rubric (needs `id:` and `criteria:`); top-level keys: {keys}",
        )
    )
    return []


def _load_jsonl(path: str, result: LoadResult) -> list[tuple[Rubric, str]]:
    out = []
    for lineno, rec, bad in importers.iter_jsonl(path):
        where = f"{path}:{lineno}"
        if bad:
            result.problems.append(f"{where}: {bad}")
            continue
        if not isinstance(rec, dict):
            result.problems.append(
                f"{where}: expected a JSON object (a rubric or a benchmark record), got {_kind(rec)}"
            )
            continue
        try:
            if "criteria" in rec:
                rubric, probs = _build(path, rec, rec, lambda loc, n=lineno: n, "rubric")
                result.problems.extend(probs)
            else:
                convert = {
                    "rubrics": importers.rubric_from_healthbench,
                    "checklist": importers.rubric_from_writingbench,
                }
                kind = next((k for k in convert if k in rec), None)
                if kind is None:
                    result.problems.append(
                        f"{where}: not a rubric: expected `criteria` (our schema), `rubrics` "
                        "(HealthBench) or `checklist` (WritingBench)"
                    )
                    continue
                rubric = convert[kind](rec, source=where)
        except importers.RecordError as e:
            result.problems.extend(f"{where}: {p}" for p in e.problems)
            continue
        if rubric is not None:
            out.append((rubric, where))
    return out


def _tidy(problems: list[str], path: str) -> list[str]:
    """One file's problems without repeats (a bad default shows once), ordered by line."""
    unique = list(dict.fromkeys(problems))

    def line(p: str) -> int:
        head = p[len(path) + 1 :].split(":", 1)[0] if p.startswith(path + ":") else ""
        return int(head) if head.isdigit() else 0

    return sorted(unique, key=line)


def find_rubric_files(paths: Sequence[str | Path]) -> tuple[list[str], list[str]]:
    """Expand files and folders (recursively, skipping hidden ones) into rubric files.

    Returns:
        ``(files, problems)``; a missing path, an unsupported file type or a folder with no rubric
        files is a problem.
    """
    files: list[str] = []
    problems: list[str] = []
    seen: set[str] = set()

    def add(p: Path) -> None:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            files.append(str(p))

    for raw in paths:
        p = Path(raw)
        if not p.exists():
            problems.append(f"{p}: does not exist" + (" (broken symlink)" if p.is_symlink() else ""))
        elif p.is_dir():
            found = []
            unreadable: list[OSError] = []
            for root, dirs, names in os.walk(p, onerror=unreadable.append):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [
                    Path(root) / n for n in sorted(names) if not n.startswith(".") and n.lower().endswith(SUFFIXES)
                ]
            for err in unreadable:
                problems.append(
                    f"{err.filename or p}: cannot read this folder ({err.strerror or err}); check its permissions"
                )
            if not found and not unreadable:
                problems.append(f"{p}: no rubric files (*.yaml, *.yml, *.jsonl) in this folder")
            for f in found:
                add(f)
        elif not p.is_file():
            problems.append(f"{p}: not a regular file")
        elif not p.name.lower().endswith(SUFFIXES):
            problems.append(f"{p}: unsupported file type; rubric files end in .yaml, .yml or .jsonl")
        else:
            add(p)
    return files, problems


def load_paths(paths: Sequence[str | Path] | str | Path) -> LoadResult:
    """Load every rubric under ``paths``, collecting all problems; never raises for bad input."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    result = LoadResult()
    result.files, result.problems = find_rubric_files(paths)
    located: list[tuple[Rubric, str]] = []
    for path in result.files:
        first = len(result.problems)
        try:
            loader = _load_jsonl if path.lower().endswith(".jsonl") else _load_yaml
            located += loader(path, result)
        except UserError as e:
            result.problems.append(e.render())
        except OSError as e:
            result.problems.append(_at(path, None, f"cannot read file: {e.strerror or e}"))
        except (RecursionError, _TooLarge):
            result.problems.append(
                _at(path, None, "nested too deeply or expands too large (recursive or exponential YAML aliases?)")
            )
        except Exception as e:  # noqa: BLE001 - a validator must report, never crash
            logger.debug("unexpected error loading %s", path, exc_info=True)
            result.problems.append(_at(path, None, f"could not load: {type(e).__name__}: {e}"))
        result.problems[first:] = _tidy(result.problems[first:], path)
    result.problems += duplicate_rubric_ids(located)
    result.rubrics = [r for r, _ in located]
    result.locations = [w for _, w in located]
    logger.info(
        "loaded %d rubrics from %d files (%d problems)", len(result.rubrics), len(result.files), len(result.problems)
    )
    return result


def load_rubrics(paths: Sequence[str | Path] | str | Path) -> list[Rubric]:
    """Load and validate rubrics from files and folders.

    Args:
        paths: ``.yaml`` / ``.yml`` / ``.jsonl`` files or folders (searched recursively).

    Returns:
        The rubrics, in file order then in-file order.

    Raises:
        Problems: one ``path:line: what is wrong`` per problem across all files.
    """
    result = load_paths(paths)
    if result.problems:
        raise Problems(result.problems)
    return result.rubrics


@dataclass
class ValidationStats:
    """What ``validate_paths`` looked at."""

    files: int = 0
    rubrics: int = 0
    criteria: int = 0

    def summary(self) -> str:
        return f"{self.files} files, {self.rubrics} rubrics, {self.criteria} criteria"


def validate_paths(paths: Sequence[str | Path]) -> tuple[ValidationStats, list[str]]:
    """Load and check every rubric file under ``paths``; never raises for bad input.

    Args:
        paths: files (``.yaml``, ``.yml``, ``.jsonl``) or folders (searched recursively).

    Returns:
        The counts and one ``path:line: what is wrong`` string per problem (empty when all is well).
    """
    result = load_paths(paths)
    stats = ValidationStats(
        files=len(result.files), rubrics=len(result.rubrics), criteria=sum(len(r.criteria) for r in result.rubrics)
    )
    return stats, result.problems
