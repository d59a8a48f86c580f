"""Judge and reward health of a run, from its stage folders: for the reports and the expectation checkers.

:func:`stage_health` reads what a training stage recorded (:mod:`rubricrl.reward.health`'s summary in
``metrics.json`` or ``reward_health.json``; for runs made before that, or engines without it, TRL's
``log_history.jsonl`` and the stage's judge counters). :func:`health_table` renders rows of those, and of
plain judge counters (``JudgeStats.as_dict()``, e.g. an evaluation judge), as a markdown table, with a
warning line for any stage whose verdicts were mostly ungraded or whose rewards never varied.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rubricrl.jsonl import read_jsonl

DEFAULT_MAX_UNGRADED_SHARE = 0.5


def _json(p: Path) -> Any:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _varied(row: Mapping[str, Any]) -> bool:
    if "frac_reward_zero_std" in row:  # TRL: share of groups whose rewards were all equal
        return float(row["frac_reward_zero_std"]) < 1.0
    return float(row.get("reward_std", 0.0) or 0.0) > 0.0


def stage_health(stage_dir: Path) -> dict[str, Any]:
    """Reward health of one training stage folder ({} when the stage left nothing to read).

    Keys (as :meth:`rubricrl.reward.health.RewardHealth.summary`, without per-step rows): ``ok`` (None when
    derived from the log), ``error``, ``steps_observed``, ``steps_with_reward_variance``, ``verdicts``,
    ``ungraded``, ``ungraded_share``, ``judge_stats``, ``thresholds``; plus ``source``, the file it came from.
    """
    stage_dir = Path(stage_dir)
    metrics = _json(stage_dir / "metrics.json") or {}
    if isinstance(metrics.get("reward_health"), dict):
        return {**metrics["reward_health"], "source": "metrics.json"}
    saved = _json(stage_dir / "reward_health.json")
    if isinstance(saved, dict):
        saved.pop("steps", None)
        return {**saved, "source": "reward_health.json"}
    history = [r for r in _lines(stage_dir / "log_history.jsonl") if "reward" in r]
    if not history and not metrics:
        return {}
    judge = metrics.get("judge") or metrics.get("self_grader") or {}
    n = int(judge.get("graded", 0) + judge.get("ungraded", 0))
    u = int(judge.get("ungraded", 0))
    return {
        "ok": None,
        "error": None,
        "steps_observed": len(history),
        "steps_with_reward_variance": sum(_varied(r) for r in history),
        "verdicts": n,
        "ungraded": u,
        "ungraded_share": u / n if n else 0.0,
        "judge_stats": judge,
        "source": "log_history.jsonl",
    }


def _lines(p: Path) -> list[dict[str, Any]]:
    return [r for r in read_jsonl(p) if isinstance(r, dict)]


def from_judge_stats(stats: Mapping[str, Any]) -> dict[str, Any]:
    """A health row from plain judge counters (an evaluation judge: no steps, no reward variance)."""
    n = int(stats.get("graded", 0) + stats.get("ungraded", 0))
    u = int(stats.get("ungraded", 0))
    return {"verdicts": n, "ungraded": u, "ungraded_share": u / n if n else 0.0, "judge_stats": dict(stats)}


def _cell(x: Any, fmt: str = "{}") -> str:
    return "n/a" if x is None else fmt.format(x)


def health_table(rows: Mapping[str, Mapping[str, Any]], max_ungraded_share: float | None = None) -> list[str]:
    """Markdown lines: a warning line per unhealthy stage, then one table row per stage.

    Args:
        rows: stage label -> :func:`stage_health` or :func:`from_judge_stats` dict (empty dicts are skipped).
        max_ungraded_share: the limit for the warning (default: each row's own threshold, else 0.5).
    """
    banners: list[str] = []
    table = [
        "| stage | steps (with reward variance) | verdicts | ungraded | share | transport errors | timeouts | "
        "retries | parse failures | mean latency (s/call) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, h in rows.items():
        if not h:
            continue
        j = h.get("judge_stats") or {}
        limit = max_ungraded_share
        if limit is None:
            limit = (h.get("thresholds") or {}).get("max_ungraded_share", DEFAULT_MAX_UNGRADED_SHARE)
        share = float(h.get("ungraded_share", 0.0))
        steps = h.get("steps_observed")
        varied = h.get("steps_with_reward_variance")
        lat = j.get("mean_latency_s")
        if lat is None and j.get("calls"):
            lat = j.get("latency_sum_s", 0.0) / j["calls"]
        table.append(
            f"| {label} | {'n/a' if steps is None else f'{steps} ({varied})'} | {h.get('verdicts', 0)} | "
            f"{h.get('ungraded', 0)} | {100 * share:.1f}% | {_cell(j.get('transport_errors'))} | "
            f"{_cell(j.get('timeouts'))} | {_cell(j.get('retries'))} | {_cell(j.get('parse_failures'))} | "
            f"{_cell(lat, '{:.2f}')} |"
        )
        if h.get("verdicts") and share > limit:
            banners.append(
                f"> **Warning: {label}: {h.get('ungraded')} of {h.get('verdicts')} verdicts "
                f"({100 * share:.0f}%) were ungraded** (limit {limit:g}); its rewards or scores are judge "
                "failures, not grades."
            )
        if steps and varied == 0:
            plural = "s" if steps != 1 else ""
            banners.append(
                f"> **Warning: {label}: no step's rewards varied** ({steps} step{plural}); every GRPO "
                "advantage was 0, so the rewards did not update the policy."
            )
        if h.get("error"):
            banners.append(f"> **Warning: {label} stopped on reward health:** {h['error']}")
    if len(table) == 2:
        return []
    return banners + ([""] if banners else []) + table
