"""Executable metric expectations of a finished run: one checker and one file format for every replication.

The pattern is NeMo RL's ``check_metrics.py`` (``data["train/reward"]["20"] > ...``), kept in YAML beside the
replication (``replications/<paper>/expected.yaml``)::

    tiny:                      # one list per scale (tiny, single_gpu, paper); YAML anchors share lists
      - name: stage 1 ran every configured step
        expr: m["stage1_rl"]["global_step"] == cfg["grpo"]["max_steps"]
        level: fail            # default; `warn` reports without failing

An expression sees:

* ``m[stage]``: that stage's ``metrics.json`` (``{}`` when the stage wrote none);
* ``done[stage]``: whether the stage finished (its ``DONE`` marker);
* ``health[stage]``: a training stage's reward health (:func:`rubricrl.report.judge_health.stage_health`,
  read also from a stage that stopped on it, or from the log history of an older run);
* ``out(stage, name)``: any other JSON file the stage wrote (e.g. ``out("eval", "eval.json")``);
* ``cfg``: the run's resolved ``config.yaml``;
* the builtins ``all any abs len max min round sum sorted``.

``rubricrl check-expected RUN_DIR`` (:func:`check_run`) exits 0 when every ``fail`` expectation holds, 1 when one
does not, 2 on bad input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rubricrl.errors import UserError
from rubricrl.papers import get_paper
from rubricrl.report.judge_health import stage_health

SCALES = ("tiny", "single_gpu", "paper")
LEVELS = ("fail", "warn")
_BUILTINS = {f.__name__: f for f in (all, any, abs, len, max, min, round, sum, sorted)}


@dataclass(frozen=True)
class Expectation:
    """One expectation: a name, a Python expression, and whether a false value fails the run."""

    name: str
    expr: str
    level: str = "fail"


@dataclass(frozen=True)
class Outcome:
    """An expectation checked against a run: ``ok`` and, when the expression raised, why."""

    expectation: Expectation
    ok: bool
    error: str = ""

    @property
    def failed(self) -> bool:
        return not self.ok and self.expectation.level == "fail"

    def line(self) -> str:
        tag = "ok  " if self.ok else ("FAIL" if self.failed else "warn")
        why = f" ({self.error})" if self.error else ""
        return f"{tag} {self.expectation.name}: {self.expectation.expr}{why}"


def _line_of(text: str, needle: str) -> int | None:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    return None


def load_expectations(path: Path) -> dict[str, list[Expectation]]:
    """Read an ``expected.yaml``: scale -> expectations, every entry checked (file and line in errors)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
    except OSError as e:
        raise UserError(f"cannot read the expectations: {e}", str(path)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise UserError(f"not valid YAML: {e}", str(path), mark.line + 1 if mark else None) from None
    if not isinstance(raw, Mapping) or not raw:
        raise UserError(f"expected a mapping of scale -> list of expectations ({', '.join(SCALES)})", str(path))
    sets: dict[str, list[Expectation]] = {}
    for scale, items in raw.items():
        line = _line_of(text, f"{scale}:")
        if scale not in SCALES:
            raise UserError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}", str(path), line)
        if not isinstance(items, list):
            raise UserError(f"{scale}: expected a list of {{name, expr, level}} entries", str(path), line)
        out = []
        for i, item in enumerate(items):
            where = f"{scale}[{i}]"
            if not isinstance(item, Mapping) or not isinstance(item.get("expr"), str):
                raise UserError(f"{where}: each entry needs `expr:` (a Python expression) and `name:`", str(path), line)
            unknown = set(item) - {"name", "expr", "level"}
            if unknown:
                raise UserError(f"{where}: unknown keys {sorted(unknown)} (name, expr, level)", str(path), line)
            level = item.get("level", "fail")
            if level not in LEVELS:
                raise UserError(f"{where}: level {level!r}; use fail or warn", str(path), line)
            try:
                compile(item["expr"], f"{path}:{where}", "eval")
            except SyntaxError as e:
                raise UserError(
                    f"{where}: `{item['expr']}` is not a Python expression ({e.msg})",
                    str(path),
                    _line_of(text, item["expr"][:40]),
                ) from None
            out.append(Expectation(str(item.get("name") or item["expr"]), item["expr"], level))
        sets[scale] = out
    return sets


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


class _Lazy(dict):
    """stage -> value, computed on first access (reward health reads logs; most expressions need few)."""

    def __init__(self, fn):
        super().__init__()
        self._fn = fn

    def __missing__(self, key: str) -> Any:
        self[key] = value = self._fn(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key]


def run_context(run_dir: Path) -> dict[str, Any]:
    """The names an expression sees for ``run_dir`` (see the module docstring)."""
    run_dir = Path(run_dir)
    return {
        "m": _Lazy(lambda s: _json(run_dir / s / "metrics.json")),
        "done": _Lazy(lambda s: (run_dir / s / "DONE").is_file()),
        "health": _Lazy(lambda s: stage_health(run_dir / s)),
        "out": lambda stage, name: _json(run_dir / stage / name),
        "cfg": _json_or_yaml(run_dir / "config.yaml"),
    }


def _json_or_yaml(path: Path) -> dict[str, Any]:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}


def check(run_dir: Path, expectations: list[Expectation]) -> list[Outcome]:
    """Evaluate each expectation against the run; a missing metric is a false expectation with its error."""
    env = run_context(run_dir)
    outcomes = []
    for e in expectations:
        try:
            # The names go into the globals: a generator expression in `expr` cannot see eval's locals.
            ok, err = bool(eval(e.expr, {"__builtins__": _BUILTINS, **env})), ""  # noqa: S307 (the repo's own file)
        except Exception as ex:  # noqa: BLE001 - a missing metric fails the expectation, with the reason
            ok, err = False, f"{type(ex).__name__}: {ex}"
        outcomes.append(Outcome(e, ok, err))
    return outcomes


def check_run(run_dir: Path, *, scale: str | None = None, expected: Path | None = None) -> int:
    """Check ``run_dir`` against its expectations, print one line per expectation; return the exit code.

    Args:
        run_dir: the run folder (``runs/<run>``), holding ``config.yaml``.
        scale: the expectation set (default: ``run.scale`` in the run's config).
        expected: the expectations file (default: ``replications/<paper>/expected.yaml`` of the run's
            ``paper``, looked up in the working directory, then in this checkout).

    Returns:
        0 when every ``fail`` expectation holds, 1 when one does not.

    Raises:
        UserError: not a run folder, no such expectations file, a malformed file, or no set for the scale.
    """
    run_dir = Path(run_dir)
    cfg_file = run_dir / "config.yaml"
    if not cfg_file.is_file():
        raise UserError("not a run folder (no config.yaml); run the replication first", str(run_dir))
    cfg = _json_or_yaml(cfg_file)
    expected = Path(expected) if expected else _default_expected(cfg, cfg_file)
    sets = load_expectations(expected)
    scale = scale or (cfg.get("run") or {}).get("scale")
    if scale not in sets:
        raise UserError(f"no expectations for scale {scale!r} (has {', '.join(sets)})", str(expected))
    outcomes = check(run_dir, sets[scale])
    for o in outcomes:
        print(o.line())
    failed = sum(o.failed for o in outcomes)
    held = sum(o.ok for o in outcomes)
    print(f"{held}/{len(outcomes)} expectations hold ({scale}, {expected}); {failed} failed")
    return 1 if failed else 0


def _default_expected(cfg: Mapping[str, Any], cfg_file: Path) -> Path:
    """The expectations file of the run's replication (``PAPER.expected`` in its folder)."""
    name = cfg.get("paper")
    if not name:
        raise UserError("the run's config names no replication (`paper:`); pass --expected FILE", str(cfg_file))
    path = get_paper(str(name)).expected_path
    if path is None or not path.is_file():
        raise UserError(
            f"replication {name!r} ships no expectations file ({path}); pass --expected FILE", str(cfg_file)
        )
    return path
