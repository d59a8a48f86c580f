"""Read evaluation results into one shape: per task, per ``metric,filter`` key, a number.

Accepted inputs:
- lm-evaluation-harness output (``--output_path``): ``results_<date>.json`` with ``results[task][metric,filter]``,
  ``config`` (model, model_args, device, limit) and ``configs[task].metadata`` (where a judge-graded task
  records its judge). A folder is searched for its newest ``results_*.json``.
- ``rubricrl score --json`` output (HealthBench metrics, one flat object). It does not say which subset it
  scored, so it must be given as ``TASK=PATH`` (e.g. ``healthbench_hard=score.json``).
A ``rubricrl_eval_<date>.json`` written by ``make eval`` beside ``results_<date>.json`` adds the model alias,
scale, device and judge. Nothing is invented: what a file does not say stays ``unknown``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rubricrl.configs import config_path
from rubricrl.errors import UserError
from rubricrl.judge.config import load_judge_config

log = logging.getLogger(__name__)

SIDECAR = "rubricrl_eval.json"
UNKNOWN = "unknown"
JUDGE_KEYS = ("judge", "judge_model", "judge_config", "grader")


@dataclass
class RunResult:
    """One evaluated model: metrics by task, and what is known about how they were obtained."""

    model: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    kind: str = "lm-eval"
    judge: str = UNKNOWN
    device: str = UNKNOWN
    limit: float | None = None
    scale: str | None = None  # from the sidecar or --scale; None = infer
    n_samples: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # task -> why make eval could not run it

    def value(self, task: str, metric: str) -> float | None:
        """The metric, or None when this run has no such task/metric (never a default)."""
        return self.metrics.get(task, {}).get(metric)


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(
            "no such file; pass lm-eval results (results_*.json or its folder) or `rubricrl score --json` output",
            path=str(path),
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read: {e}", path=str(path)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"not valid JSON: {e.msg} (column {e.colno})", path=str(path), line=e.lineno) from None


def results_files(folder: Path) -> list[Path]:
    """Every ``results_*.json`` under ``folder``, newest first (lm-eval names them by ISO date)."""
    found = sorted(folder.rglob("results_*.json"), key=lambda p: (p.name, p.stat().st_mtime), reverse=True)
    if not found:
        raise UserError("no lm-eval results_*.json under this folder (run `make eval` first)", path=str(folder))
    return found


def _model_args(config: dict[str, Any]) -> dict[str, Any]:
    args = config.get("model_args")
    if isinstance(args, dict):
        return args
    if isinstance(args, str):
        out: dict[str, Any] = {}
        for part in args.split(","):
            if "=" in part:
                k, v = part.split("=", 1)
                out[k.strip()] = v.strip()
        return out
    return {}


def _model_name(data: dict[str, Any], args: dict[str, Any]) -> str:
    for key in ("pretrained", "model", "path"):
        if isinstance(args.get(key), str) and args[key]:
            return Path(args[key].rstrip("/")).name or args[key]
    name = data.get("model_name")
    return str(name) if name else UNKNOWN


def sidecar_name(results_file: Path) -> str:
    """``results_<date>.json`` -> ``rubricrl_eval_<date>.json`` (what ``make eval`` writes beside it)."""
    stem = results_file.stem
    return f"rubricrl_eval_{stem[len('results_') :]}.json" if stem.startswith("results_") else SIDECAR


def _sidecar(results_file: Path) -> dict[str, Any]:
    candidates = [
        results_file.parent / sidecar_name(results_file),
        results_file.parent / SIDECAR,
        results_file.parent.parent / SIDECAR,
    ]
    for p in candidates:
        if p.is_file():
            data = _load_json(p)
            if isinstance(data, dict):
                return data
    return {}


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return None if math.isnan(float(v)) else float(v)


def describe_judge(spec: str) -> str:
    """A judge config name or path as ``name (model)`` when it resolves to a judge config, else as given."""
    try:
        cfg = load_judge_config(config_path("judge", spec))
    except Exception:  # noqa: BLE001 - an unresolvable name is still worth showing as recorded
        return spec
    name = Path(spec).stem if spec.endswith((".yaml", ".yml")) else spec
    return f"{name} ({cfg.model})" if cfg.model and cfg.model != name else name


def _judges(data: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    configs = data.get("configs")
    for cfg in configs.values() if isinstance(configs, dict) else []:
        meta = cfg.get("metadata") if isinstance(cfg, dict) else None
        if isinstance(meta, dict):
            found.update(describe_judge(str(meta[k])) for k in JUDGE_KEYS if isinstance(meta.get(k), str) and meta[k])
    for holder in (data.get("config"), data.get("rubricrl")):
        if isinstance(holder, dict):
            found.update(str(holder[k]) for k in JUDGE_KEYS if holder.get(k))
    return found


def parse_lm_eval(data: Any, path: Path) -> RunResult:
    """An lm-eval results object (already parsed) as a :class:`RunResult`.

    Raises:
        UserError: the object does not have lm-eval's ``results`` mapping.
    """
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise UserError(
            "not lm-eval results: no top-level 'results' object (expected lm-eval's "
            "--output_path results_*.json, or TASK=PATH for `rubricrl score --json` output)",
            path=str(path),
        )
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    args = _model_args(config)
    metrics: dict[str, dict[str, float]] = {}
    for section in ("results", "groups"):
        block = data.get(section)
        for task, values in block.items() if isinstance(block, dict) else []:
            if not isinstance(values, dict):
                continue
            for key, v in values.items():
                num = _number(v)
                if num is not None and "," in key and "_stderr," not in key:
                    metrics.setdefault(task, {})[key] = num
    n_samples = {}
    for task, ns in (data.get("n-samples") or {}).items():
        if isinstance(ns, dict) and isinstance(ns.get("effective"), int):
            n_samples[task] = ns["effective"]
    for group, members in (data.get("group_subtasks") or {}).items():  # a group's n: its leaf tasks' n summed
        if (
            isinstance(members, list)
            and members
            and group not in n_samples
            and all(isinstance(m, str) and m in n_samples for m in members)
        ):
            n_samples[group] = sum(n_samples[m] for m in members)
    side = _sidecar(path)
    judges = _judges(data)
    if side.get("judge"):
        judges.add(str(side["judge"]))
    device = side.get("device") or config.get("device") or args.get("device")
    if not device and args.get("base_url"):
        device = f"server {args['base_url']}"
    limit = side.get("limit", config.get("limit"))
    return RunResult(
        model=str(side.get("model") or _model_name(data, args)),
        metrics=metrics,
        sources=[str(path)],
        kind="lm-eval",
        judge=", ".join(sorted(judges)) if judges else UNKNOWN,
        device=str(device) if device else UNKNOWN,
        limit=_number(limit),
        scale=side.get("scale"),
        n_samples=n_samples,
        skipped={str(k): str(v) for k, v in (side.get("skipped") or {}).items()},
    )


def parse_score_json(data: Any, path: Path, task: str) -> RunResult:
    """``rubricrl score --json`` output, labelled with the task it scored (``overall_score`` etc. as metrics)."""
    if not isinstance(data, dict) or "overall_score" not in data:
        raise UserError("not `rubricrl score --json` output: no 'overall_score'", path=str(path))
    metrics = {
        f"{k},none": float(v)
        for k, v in data.items()
        if _number(v) is not None and ":" not in k and not k.startswith("n_") and k not in ("seed",)
    }
    metrics.update({f"{k},none": float(v) for k, v in data.items() if ":" in k and _number(v) is not None})
    judge = next((str(data[k]) for k in JUDGE_KEYS if data.get(k)), UNKNOWN)
    return RunResult(
        model=str(data.get("model") or path.stem),
        metrics={task: metrics},
        sources=[str(path)],
        kind="rubricrl-score",
        judge=judge,
        n_samples={task: int(data["n_examples"])} if isinstance(data.get("n_examples"), int) else {},
    )


def read_folder(folder: Path) -> list[RunResult]:
    """The newest result of every task under ``folder`` (several ``make eval`` calls with different TASKS add up).

    Older files only contribute tasks that no newer file has; a file contributing nothing is ignored.
    """
    runs: list[RunResult] = []
    covered: set[str] = set()
    for path in results_files(folder):
        run = parse_lm_eval(_load_json(path), path)
        run.metrics = {t: m for t, m in run.metrics.items() if t not in covered}
        if run.metrics:
            covered |= set(run.metrics)
            run.n_samples = {t: n for t, n in run.n_samples.items() if t in run.metrics}
            run.skipped = {t: why for t, why in run.skipped.items() if t not in covered}
            runs.append(run)
            log.info("using %s for %s", path, ", ".join(sorted(run.metrics)))
    return list(reversed(runs))  # oldest first, so merging keeps the newest numbers


def read_results(spec: str) -> list[RunResult]:
    """One RESULTS argument: a results file, a folder (newest result of each task in it), or ``TASK=PATH``."""
    task = None
    if "=" in spec and not Path(spec).exists():
        task, spec = spec.split("=", 1)
        if not task:
            raise UserError(f"empty task name in {task}={spec!r}; write TASK=PATH, e.g. healthbench_hard=score.json")
    path = Path(spec)
    if path.is_dir():
        return read_folder(path)
    data = _load_json(path)
    if isinstance(data, dict) and "results" in data:
        return [parse_lm_eval(data, path)]
    if isinstance(data, dict) and "overall_score" in data:
        if task is None:
            raise UserError(
                "`rubricrl score --json` output does not say which HealthBench subset it scored; "
                f"pass it as TASK=PATH, e.g. healthbench_hard={spec}",
                path=str(path),
            )
        return [parse_score_json(data, path, task)]
    return [parse_lm_eval(data, path)]  # raises with the lm-eval explanation


def merge_runs(runs: list[RunResult]) -> list[RunResult]:
    """Runs of the same model, judge, scale and limit become one (a suite evaluated in several calls).

    A task measured twice keeps the later file's numbers (files in command-line order) and logs it.
    """
    merged: dict[tuple[Any, ...], RunResult] = {}
    for run in runs:
        key = (run.model, run.judge, run.scale, run.limit, run.device)
        if key not in merged:
            merged[key] = RunResult(
                **{
                    **run.__dict__,
                    "metrics": dict(run.metrics),
                    "sources": list(run.sources),
                    "n_samples": dict(run.n_samples),
                    "skipped": dict(run.skipped),
                }
            )
            continue
        into = merged[key]
        for task, vals in run.metrics.items():
            if task in into.metrics:
                log.warning(
                    "%s: task %s also in %s; keeping the later file's numbers",
                    run.sources[0],
                    task,
                    ", ".join(into.sources),
                )
            into.metrics[task] = vals
        into.n_samples.update(run.n_samples)
        into.skipped = {k: v for k, v in {**into.skipped, **run.skipped}.items() if k not in into.metrics}
        into.sources.extend(run.sources)
    return list(merged.values())
