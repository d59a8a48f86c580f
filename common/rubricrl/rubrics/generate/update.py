"""The rubric update loop (Rubicon's "RL with rubrics"): revise a bank from a training stage's pass rates.

Input: the stage's ``rollouts.jsonl`` (one line per graded rollout with ``step``, ``rubric_id`` and
``per_criterion``: criterion id -> value in [0, 1] or null, as the TRL adapter and the NeMo RL environment
write it). Per (rubric, criterion) and step the pass rate is the mean graded value. Over the last
``last_steps`` steps that have the criterion:

* **saturated**: every step's pass rate is at least ``saturated`` (and at least ``min_samples`` graded
  values in all): the criterion no longer separates responses; it is **retired** (removed from the bank);
* **never passes**: every graded value over all steps is 0 (at least ``min_samples``): it is **flagged**
  (kept, tagged ``flag:never_passes``) for a person to reword, since it may be unreachable or misjudged.

A criterion whose retirement would leave its rubric invalid (no criterion, or no positive points) is
flagged ``flag:saturated`` instead of retired. The revised bank and a changes file (each retired or
flagged criterion with its reason and pass rates) are written for the next stage.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rubricrl.errors import Problems, UserError
from rubricrl.jsonl import iter_jsonl, write_jsonl_atomic
from rubricrl.rubrics.loader import load_rubrics
from rubricrl.rubrics.schema import Rubric


@dataclass
class Change:
    rubric_id: str
    criterion_id: str
    action: str  # "retired" | "flagged"
    reason: str  # "saturated" | "never_passes"
    pass_rates: dict[int, float] = field(default_factory=dict)
    samples: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "rubric_id": self.rubric_id,
            "criterion_id": self.criterion_id,
            "action": self.action,
            "reason": self.reason,
            "pass_rate_by_step": {str(k): round(v, 4) for k, v in sorted(self.pass_rates.items())},
            "samples": self.samples,
        }


def pass_rates(path: str | Path) -> dict[tuple[str, str], dict[int, list[float]]]:
    """``(rubric id, criterion id) -> step -> graded values`` from a rollouts JSONL.

    Raises:
        Problems: lines that are not rollout records.
    """
    out: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    problems = []
    for line, obj, bad in iter_jsonl(path):
        where = f"{path}:{line}"
        if bad:
            problems.append(f"{where}: {bad}")
            continue
        if not (
            isinstance(obj, dict)
            and isinstance(obj.get("step"), int)
            and isinstance(obj.get("rubric_id"), str)
            and isinstance(obj.get("per_criterion"), dict)
        ):
            problems.append(f"{where}: not a rollout record with 'step', 'rubric_id' and 'per_criterion'")
            continue
        for cid, v in obj["per_criterion"].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[(obj["rubric_id"], cid)][obj["step"]].append(float(v))
    if problems:
        raise Problems(problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else []))
    return out


def find_changes(
    rates: dict[tuple[str, str], dict[int, list[float]]],
    saturated: float = 0.95,
    last_steps: int = 5,
    min_samples: int = 8,
) -> list[Change]:
    """Criteria that saturated over the last ``last_steps`` steps, or never passed (see the module docstring)."""
    changes = []
    for (rid, cid), by_step in sorted(rates.items()):
        steps = sorted(by_step)
        everything = [v for s in steps for v in by_step[s]]
        means = {s: sum(by_step[s]) / len(by_step[s]) for s in steps}
        recent = steps[-last_steps:]
        n_recent = sum(len(by_step[s]) for s in recent)
        if len(everything) >= min_samples and max(everything) == 0.0:
            changes.append(Change(rid, cid, "flagged", "never_passes", means, len(everything)))
        elif len(recent) >= last_steps and n_recent >= min_samples and all(means[s] >= saturated for s in recent):
            changes.append(Change(rid, cid, "retired", "saturated", {s: means[s] for s in recent}, n_recent))
    return changes


def revise(bank: list[Rubric], changes: list[Change]) -> tuple[list[Rubric], list[Change]]:
    """The bank with retired criteria removed and flagged ones tagged; returns it and the applied changes."""
    by_rubric: dict[str, list[Change]] = defaultdict(list)
    for c in changes:
        by_rubric[c.rubric_id].append(c)
    out, applied = [], []
    for r in bank:
        todo = {c.criterion_id: c for c in by_rubric.get(r.id, []) if any(x.id == c.criterion_id for x in r.criteria)}
        if not todo:
            out.append(r)
            continue
        crits = []
        for c in r.criteria:
            ch = todo.get(c.id)
            if ch is None:
                crits.append(c)
            elif ch.action == "flagged":
                crits.append(c.model_copy(update={"tags": (*c.tags, f"flag:{ch.reason}")}))
                applied.append(ch)
            else:
                crits.append(None)
        retired = [todo[c.id] for c, kept in zip(r.criteria, crits) if kept is None]
        remaining = [c for c in crits if c is not None]
        ok = bool(remaining) and (not r.uses_points or any((c.points or 0) > 0 for c in remaining))
        if ok:
            applied += retired
        else:  # retiring would leave an invalid rubric: flag instead
            remaining = [
                c if c is not None else orig.model_copy(update={"tags": (*orig.tags, "flag:saturated")})
                for c, orig in zip(crits, r.criteria)
            ]
            for ch in retired:
                ch.action = "flagged"
                applied.append(ch)
        out.append(r.model_copy(update={"criteria": tuple(remaining)}))
    return out, applied


def update_bank(
    bank_paths: list[str | Path],
    rollouts: str | Path,
    out: str | Path,
    *,
    saturated: float = 0.95,
    last_steps: int = 5,
    min_samples: int = 8,
) -> list[Change]:
    """Write the revised bank (JSONL, our schema) and ``<out stem>.changes.jsonl``; returns the changes.

    Raises:
        UserError: ``out`` or its changes file exists (nothing is overwritten), or bad inputs.
    """
    out = Path(out)
    changes_path = out.with_name(out.name.removesuffix(".jsonl") + ".changes.jsonl")
    for p in (out, changes_path):
        if p.exists():
            raise UserError("already exists; not overwritten (choose another --out)", path=str(p))
    bank = load_rubrics(bank_paths)
    found = find_changes(pass_rates(rollouts), saturated, last_steps, min_samples)
    revised, applied = revise(bank, found)
    rows = []
    for r in revised:
        d = r.model_dump(mode="json", exclude_defaults=True)
        d["source"] = f"rubricrl rubrics update from {rollouts} ({r.source})"
        rows.append(d)
    write_jsonl_atomic(out, rows)
    write_jsonl_atomic(changes_path, [c.to_json() for c in applied])
    return applied
