"""The gate summary of a generation run: counts kept and dropped per reason (JSON, markdown) and a histogram.

Computed from the run's files, not from memory, so a resumed run's summary covers every run before it.
Token counts are the servers' ``usage`` (OpenAI-compatible backends), summed over runs; ``per_rubric``
divides them by the units processed, which is what ``rubricrl rubrics plan`` reads.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from rubricrl.jsonl import iter_jsonl, write_atomic
from rubricrl.rubrics.generate.generate import is_call_failure


def side_paths(out: str | Path) -> dict[str, Path]:
    """The files written beside ``out`` (see the module table)."""
    p = Path(out)
    stem = p.name.removesuffix(".jsonl")
    return {
        "gates": p.with_name(f"{stem}.gates.jsonl"),
        "failures": p.with_name(f"{stem}.failures.jsonl"),
        "summary_json": p.with_name(f"{stem}.summary.json"),
        "summary_md": p.with_name(f"{stem}.summary.md"),
        "histogram": p.with_name(f"{stem}.gate_hist.png"),
    }


TOKEN_PARTS = ("generation", "gate_policy", "gate_judge")


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [obj for _, obj, bad in iter_jsonl(path, allow_empty=True) if not bad and isinstance(obj, dict)]


def _add_tokens(before: dict[str, Any] | None, run: dict[str, Any]) -> dict[str, Any]:
    total: dict[str, Any] = {"units": int((before or {}).get("units", 0)) + int(run.get("units", 0))}
    for part in TOKEN_PARTS:
        old = (before or {}).get(part) or {}
        new = run.get(part) or {}
        if not old and not new:
            total[part] = None
            continue
        total[part] = {
            k: int(old.get(k, 0)) + int(new.get(k, 0)) for k in ("calls", "prompt_tokens", "completion_tokens")
        }
    n = total["units"]
    per: dict[str, float] = {}
    for part in TOKEN_PARTS:
        if total[part] and n:
            per[f"{part}_prompt_tokens"] = round(total[part]["prompt_tokens"] / n, 1)
            per[f"{part}_completion_tokens"] = round(total[part]["completion_tokens"] / n, 1)
    total["per_rubric"] = per
    return total


def summarise(
    out: str | Path,
    cfg: Any,
    model: str,
    template: Any,
    units: list[Any],
    tokens_run: dict[str, Any],
    tokens_before: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary of everything under ``out`` (see the module docstring)."""
    sides = side_paths(out)
    kept = {r["id"]: r for r in _rows(Path(out)) if isinstance(r.get("id"), str)}
    gates: dict[str, dict[str, Any]] = {}
    for g in _rows(sides["gates"]):
        gates[str(g.get("id"))] = g  # the last record of a unit wins
    dropped = {i: g for i, g in gates.items() if g.get("status") == "dropped" and i not in kept}
    failures: dict[str, dict[str, Any]] = {}
    for f in _rows(sides["failures"]):
        failures[str(f.get("id"))] = f
    failed = {i: f for i, f in failures.items() if i not in kept and i not in dropped}
    decided = [g for i, g in gates.items() if i in kept or i in dropped]
    crit = {
        "in_kept_rubrics": sum(len(r.get("criteria", [])) for r in kept.values()),
        "duplicates_removed": sum(len(g.get("duplicates_removed") or []) for g in decided),
        "example_copies_removed": sum(len(g.get("example_copies") or []) for g in decided),
        "reference_copies": sum(len(g.get("reference_copies") or []) for g in decided),
        "programmatic": sum(int(g.get("programmatic") or 0) for g in decided),
        "verifier_rejected": sum(sum("kept as an LLM criterion" in n for n in (g.get("notes") or [])) for g in decided),
    }

    def last_reason(f: dict[str, Any]) -> str:
        return str((f.get("reasons") or ["unknown"])[-1])

    def first_reason(f: dict[str, Any]) -> str:
        return last_reason(f).split(":", 1)[0]

    stds = {
        i: g["discrimination"]["std"]
        for i, g in gates.items()
        if (i in kept or i in dropped) and isinstance(g.get("discrimination"), dict)
    }
    disc = cfg.gates.discrimination
    return {
        "output": str(out),
        "units": len(units),
        "granularity": cfg.granularity,
        "generator": model,
        "template": template.name,
        "template_sha256": template.hash,
        "kept": len(kept),
        "dropped": dict(sorted(Counter(str(g.get("reason")) for g in dropped.values()).items())),
        "failed": len(failed),
        "failed_by_last_reason": dict(sorted(Counter(first_reason(f) for f in failed.values()).items())),
        # failures of the servers (generator or gate calls), not of the rubric: a re-run retries them
        "failed_calls": sum(is_call_failure(last_reason(f)) for f in failed.values()),
        "pending": len([u for u in units if u.id not in kept and u.id not in dropped and u.id not in failed]),
        "criteria": crit,
        "gates": {
            "dedup": cfg.gates.dedup.model_dump() if cfg.gates.dedup.enabled else False,
            "reference_copy": cfg.gates.reference_copy.model_dump() if cfg.gates.reference_copy.enabled else False,
            "discrimination": {"k": disc.k, "min_std": disc.min_std} if disc.enabled else False,
        },
        "discrimination_std": stds,
        "tokens": _add_tokens(tokens_before, tokens_run),
    }


def markdown(summary: dict[str, Any]) -> str:
    """The summary as a short markdown report."""
    s = summary
    lines = [
        f"# Rubric generation: {s['output']}",
        "",
        f"{s['units']} units ({s['granularity']}), generator `{s['generator']}`, "
        f"template `{s['template']}` (sha256 {s['template_sha256'][:12]})",
        "",
        "| outcome | rubrics |",
        "|---|---|",
        f"| kept | {s['kept']} |",
    ]
    for reason, n in s["dropped"].items():
        lines.append(f"| dropped: {reason} | {n} |")
    lines.append(f"| failed (no valid rubric within the attempts) | {s['failed']} |")
    if s["pending"]:
        lines.append(f"| not yet done | {s['pending']} |")
    c = s["criteria"]
    lines += [
        "",
        "| criteria | count |",
        "|---|---|",
        f"| in kept rubrics | {c['in_kept_rubrics']} |",
        f"| near-duplicates removed | {c['duplicates_removed']} |",
        f"| copies of the prompt's example criteria or text removed | {c.get('example_copies_removed', 0)} |",
        f"| copying the reference answer | {c['reference_copies']} |",
        f"| programmatic (a verifier with valid args) | {c['programmatic']} |",
        f"| verifier named but rejected (kept as LLM criteria) | {c['verifier_rejected']} |",
    ]
    per = s["tokens"].get("per_rubric") or {}
    if per:
        lines += ["", "Tokens per rubric (server-reported usage): " + ", ".join(f"{k} {v}" for k, v in per.items())]
    if s["failed_by_last_reason"]:
        lines += [
            "",
            "Failures by last reason: " + ", ".join(f"{k} {v}" for k, v in s["failed_by_last_reason"].items()),
        ]
    if s.get("failed_calls"):
        lines += [
            "",
            f"{s['failed_calls']} of the failures are server call failures (generator or gate): "
            "a re-run retries every failed unit.",
        ]
    return "\n".join(lines) + "\n"


def histogram(summary: dict[str, Any], path: Path, kept_ids: set[str]) -> Path:
    """Histogram of the discrimination gate's score std per rubric, kept and dropped stacked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stds = summary["discrimination_std"]
    kept = [v for i, v in stds.items() if i in kept_ids]
    dropped = [v for i, v in stds.items() if i not in kept_ids]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    hi = max([0.5, *stds.values()])
    ax.hist(
        [kept, dropped],
        bins=20,
        range=(0.0, hi),
        stacked=True,
        color=["#3b7dd8", "#bbbbbb"],
        label=[f"kept (n={len(kept)})", f"dropped (n={len(dropped)})"],
    )
    disc = summary["gates"]["discrimination"]
    if disc:
        ax.axvline(disc["min_std"], color="#d83b3b", linestyle="--", linewidth=1, label=f"min_std {disc['min_std']}")
    ax.set_xlabel(f"std of rubric scores over k={disc['k'] if disc else '?'} policy responses")
    ax.set_ylabel("rubrics")
    ax.set_title(f"discrimination gate: {summary['kept']} kept, {sum(summary['dropped'].values())} dropped")
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_summary(summary: dict[str, Any], sides: dict[str, Path]) -> None:
    """Write ``summary.json``, ``summary.md`` and the histogram (atomically, each)."""
    write_atomic(sides["summary_json"], [json.dumps(summary, indent=1, ensure_ascii=False) + "\n"])
    write_atomic(sides["summary_md"], [markdown(summary)])
    kept_ids = {r["id"] for r in _rows(Path(summary["output"])) if isinstance(r.get("id"), str)}
    histogram(summary, sides["histogram"], kept_ids)
