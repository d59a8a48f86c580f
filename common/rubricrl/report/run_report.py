"""Shared pieces of the replications' run reports: stage files, training curves, step-time table, W&B copies.

A replication's report stage (``replications/<paper>/report.py``) reads its stage folders and writes ``report.md``
and PNGs; what every such report needs lives here: reading a stage's JSON / JSONL files, the per-stage training
curves with the judge's ungraded share (:func:`training_figure`), the step-time table (:func:`step_time_table`),
the W&B eval and report runs (:func:`log_pipeline_wandb`) and the flattened numbers they log.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from rubricrl.jsonl import read_jsonl
from rubricrl.report.style import OURS, SECOND, WARN
from rubricrl.train.wandb_log import log_stage_run


def read_json(p: Path) -> Any:
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}


def read_history(p: Path) -> list[dict[str, Any]]:
    return read_jsonl(p)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> Path:
    plt = pyplot()
    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def health_steps(stage_dir: Path) -> list[dict[str, Any]]:
    """Per-step reward-health rows of a training stage (``step``, ``n_verdicts``, ``n_ungraded``, ...), or []."""
    metrics = read_json(stage_dir / "metrics.json")
    rows = (metrics.get("reward_health") or {}).get("steps") if isinstance(metrics, dict) else None
    if not rows:
        saved = read_json(stage_dir / "reward_health.json")
        rows = saved.get("steps") if isinstance(saved, dict) else None
    return [r for r in rows or [] if isinstance(r, dict) and "step" in r]


def _health_title(name: str, steps: list[dict[str, Any]]) -> str:
    n = sum(int(r.get("n_verdicts", 0)) for r in steps)
    if not n:
        return f"{name}\n" + ("judge health: not recorded" if not steps else "judge health: no verdicts recorded")
    u = sum(int(r.get("n_ungraded", 0)) for r in steps)
    varied = sum(bool(r.get("varied")) for r in steps)
    return (
        f"{name}\njudge health: {u} of {n} verdicts ungraded ({100 * u / n:.1f}%)\n"
        f"{varied} of {len(steps)} steps with reward variance"
    )


def training_figure(curves: dict[str, list[dict[str, Any]]], health: dict[str, list[dict[str, Any]]] | None = None):
    """Reward per step for each RL stage (one panel each), with the veto rate where logged and the judge's
    ungraded-verdict share per step where the stage recorded reward health (``health``: stage -> its
    :func:`health_steps`). Integer step ticks; the caller closes the figure."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    health = health or {}
    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 3.6), squeeze=False)
    for ax, (name, hist) in zip(axes[0], curves.items()):
        rows = [h for h in hist if "reward" in h and "step" in h]
        ax.plot(
            [h["step"] for h in rows], [h["reward"] for h in rows], marker="o", ms=3, color=OURS, label="mean reward"
        )
        vr = [h for h in rows if "veto_rate" in h]
        if vr:
            ax.plot(
                [h["step"] for h in vr], [h["veto_rate"] for h in vr], linestyle="--", color=SECOND, label="veto rate"
            )
        steps = health.get(name) or []
        judged = [r for r in steps if r.get("n_verdicts")]
        if judged:
            ax.plot(
                [r["step"] for r in judged],
                [r["n_ungraded"] / r["n_verdicts"] for r in judged],
                linestyle=":",
                marker="x",
                ms=4,
                color=WARN,
                label="ungraded verdict share",
            )
        ax.set_title(_health_title(name, steps), fontsize=9)
        ax.set_xlabel("GRPO step")
        ax.set_ylabel("reward / share of samples (0-1)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(-0.05, 1.05)
        if not rows:  # a stage that logged no step (not run yet, or failed before its first log)
            ax.set_xlim(0, 1)
            ax.text(0.5, 0.5, "no steps logged", transform=ax.transAxes, ha="center", va="center", color="#555555")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_training(
    curves: dict[str, list[dict[str, Any]]], path: Path, health: dict[str, list[dict[str, Any]]] | None = None
) -> Path:
    """:func:`training_figure` saved as PNG."""
    return save_figure(training_figure(curves, health), path)


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def step_time_table(stages: dict[str, dict]) -> list[str]:
    """Mean step time per stage and its split (``timing`` of the stage metrics); empty when none has it."""
    rows = [(name, m["timing"]) for name, m in stages.items() if isinstance(m.get("timing"), dict) and m["timing"]]
    if not rows:
        return []
    out = [
        "",
        "Where a step's time goes (means over the logged steps; judge queue wait and compute are summed over "
        "the step's concurrent calls):",
        "",
        "| stage | step s | generation s | reward s | train s | reward share | judge queue wait s | judge compute s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in rows:
        cells = [t.get(f"timing/{k}") for k in ("step_s", "generation_s", "reward_s", "train_s")]
        share = t.get("timing/reward_share")
        judge = [t.get("timing/judge_queue_wait_s"), t.get("timing/judge_compute_s")]
        out.append(
            f"| {name} | "
            + " | ".join("-" if c is None else f"{c:.2f}" for c in cells)
            + " | "
            + ("-" if share is None else pct(share))
            + " | "
            + " | ".join("-" if c is None else f"{c:.2f}" for c in judge)
            + " |"
        )
    return out


def items_text(d: Any, words: bool = False) -> str:
    """A mapping as ``key value, ...`` (``words``: underscores as spaces), never as a Python dict."""
    if not isinstance(d, dict) or not d:
        return "none"
    return ", ".join(
        f"{str(k).replace('_', ' ') if words else k} {f'{v:g}' if isinstance(v, float) else v}" for k, v in d.items()
    )


def flat_numbers(d: Any, prefix: str = "") -> dict[str, float]:
    """Every number in a nested mapping as ``a/b/c`` -> value (lists and strings skipped)."""
    out: dict[str, float] = {}
    for k, v in d.items() if isinstance(d, dict) else []:
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_numbers(v, key + "/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = v
    return out


def log_pipeline_wandb(
    cfg: Any,
    run_dir: Path,
    report_dir: Path,
    markdown: str,
    eval_summary: dict[str, float],
    eval_tables: dict[str, tuple[list[str], list[list[Any]]]],
    eval_images: dict[str, Path],
    report_tables: dict[str, tuple[list[str], list[list[Any]]]] | None = None,
) -> dict[str, str]:
    """The held-out evaluation (``job_type=eval``) and the report (``job_type=report``, with ``report_tables``, e.g.
    the drift monitor's checks) as W&B runs beside the training runs (same group, ``runs/<run>/wandb/``). A W&B
    failure is logged as a warning, never fails the report, which is already written. Returns job type -> local
    W&B folder."""

    done: dict[str, str] = {}
    try:
        folder = log_stage_run(
            cfg, run_dir, f"{cfg.run.name}-eval", "eval", summary=eval_summary, tables=eval_tables, images=eval_images
        )
        if folder is not None:
            done["eval"] = str(folder)
        folder = log_stage_run(
            cfg,
            run_dir,
            f"{cfg.run.name}-report",
            "report",
            summary=eval_summary,
            tables=report_tables,
            images={f"report/{p.stem}": p for p in sorted(report_dir.glob("*.png"))},
            texts={"report/markdown": markdown},
        )
        if folder is not None:
            done["report"] = str(folder)
    except Exception as e:  # noqa: BLE001 - W&B is a copy of what the report folder already holds
        logging.getLogger(__name__).warning(
            "W&B logging of the eval and report failed (%s: %s); the report is in %s", type(e).__name__, e, report_dir
        )
    return done


def drift_numbers(drift: dict[str, dict | None]) -> dict[str, float]:
    """The drift monitors' headline numbers for a W&B summary: ``monitor/<stage>/{last_gap,widening,...}``."""
    out: dict[str, float] = {}
    for name, d in drift.items():
        for k in ("checks", "valid_checks", "skipped_checks", "first_gap", "last_gap", "widening", "trend"):
            v = (d or {}).get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f"monitor/{name.replace(' ', '')}/{k}"] = v
    return out
