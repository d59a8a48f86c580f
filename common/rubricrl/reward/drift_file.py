"""``monitor.jsonl``: a stage's gold-judge drift checks on disk (:mod:`rubricrl.reward.drift`), one line each.

Append-only, one record per check, written as soon as the check is made (also the check that stopped
training). One writer and one reader for both engines: a stage resumed after step N cuts the records of later
steps (that attempt's, which training now repeats) and takes the kept ones back into its monitor.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rubricrl.jsonl import append_jsonl, cut_step_records
from rubricrl.reward.drift import DriftCheck, DriftMonitor

FILE = "monitor.jsonl"


def append_check(path: str | Path, check: DriftCheck) -> None:
    """Append ``check`` as one JSON line (the folder is created if needed)."""
    append_jsonl(path, [asdict(check)])


def read_checks(path: str | Path) -> list[dict[str, Any]]:
    """The checks in ``path`` in step order (the last record of a step wins); [] without the file.

    Unreadable lines (a torn last line of a killed run) are skipped.
    """
    p = Path(path)
    if not p.is_file():
        return []
    by_step: dict[int, dict[str, Any]] = {}
    for line in p.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            by_step[int(row["step"])] = row
        except (ValueError, KeyError, TypeError):
            continue
    return [by_step[s] for s in sorted(by_step)]


def restore_monitor(path: str | Path, monitor: DriftMonitor, done_steps: int | None) -> tuple[int, int]:
    """After a resume past ``done_steps`` steps (0 or None: a fresh start), cut later records and restore the rest.

    Returns:
        ``(kept, cut)`` record counts ((0, 0) without the file).

    Raises:
        UserError: the file holds lines that are not per-step records (it is left as it was).
    """
    p = Path(path)
    if not p.is_file():
        return 0, 0
    kept, cut = cut_step_records(p, int(done_steps or 0))
    monitor.restore(read_checks(p))
    return kept, cut


def summary_from_file(path: str | Path, **labels: Any) -> dict[str, Any] | None:
    """The :meth:`DriftMonitor.summary` rebuilt from ``path`` (with its per-check ``rows``), or None without checks.

    ``labels``: ``judge``, ``train_judge``, ``stage`` and ``thresholds`` (a :class:`DriftThresholds`) when known;
    the widening and trend are those recorded with each check.
    """
    rows = read_checks(path)
    if not rows:
        return None
    monitor = DriftMonitor(labels.pop("thresholds", None), **labels)
    monitor.restore(rows)
    out = monitor.summary()
    out["rows"] = rows
    return out
