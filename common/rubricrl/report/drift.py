"""The gold-judge drift monitor in the reports: a table of the checks and a plot of both judges' rewards.

:func:`stage_drift` reads a training stage folder (the summary in ``metrics.json``, else rebuilt from
``monitor.jsonl``; the per-check rows from ``monitor.jsonl``: :mod:`rubricrl.reward.drift_file`).
:func:`drift_section` renders the markdown, :func:`plot_drift` the PNG (``drift_monitor.png``), and
:func:`drift_wandb_table` the same rows for W&B. The replications' report stages
(``replications/<paper>/report.py``) use them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rubricrl.report.style import BASE, OURS, SECOND, WARN
from rubricrl.reward.drift_file import FILE, read_checks, summary_from_file

PLOT = "drift_monitor.png"


def stage_drift(stage_dir: Path) -> dict[str, Any] | None:
    """A training stage's drift-monitor summary with its per-check ``rows``, or None when no check ran."""
    stage_dir = Path(stage_dir)
    rows = read_checks(stage_dir / FILE)
    saved = None
    try:
        saved = json.loads((stage_dir / "metrics.json").read_text(encoding="utf-8")).get("drift_monitor")
    except (OSError, ValueError, AttributeError):
        saved = None
    if isinstance(saved, dict):
        return {**saved, "rows": rows}
    return summary_from_file(stage_dir / FILE, stage=stage_dir.name) if rows else None


def _f(x: Any, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def drift_section(stages: Mapping[str, dict[str, Any] | None], heading: str = "##") -> list[str]:
    """Markdown lines: what the monitor does, then per stage its verdict and its checks (step, training-judge
    reward, gold-judge reward, gap, widening, n, gold ungraded). One line saying it was off when no stage has checks."""
    on = {k: v for k, v in stages.items() if v}
    L = [f"{heading} Gold-judge drift monitor", ""]
    if not on:
        return L + ["Off in this run (`monitor.judge` not set): no second judge graded the training rollouts.", ""]
    L += [
        "Every few steps a second (gold) judge grades the rollouts of a sample of the step's prompts; the gap is the "
        "training judge's mean reward minus the gold judge's on the same rollouts, the widening is how far the recent "
        "gap moved from the first check's. A training reward that keeps rising while the gold reward does not is "
        'the failure this watches for ("Rubric Dropout", arXiv 2608.11669). A check whose gold verdicts were mostly '
        "ungraded gives no gold reward: it is shown as skipped.",
        "",
    ]
    for name, d in on.items():
        th = d.get("thresholds") or {}
        L += [
            f"**{name}**: gold judge {d.get('judge')}; training judge {d.get('train_judge')}. "
            f"max_gap {th.get('max_gap', '?')}, on_gap {th.get('on_gap', '?')}, window {th.get('window', '?')}.",
            "",
            f"Verdict: {d.get('verdict')}.",
            "",
        ]
        rows = d.get("rows") or []
        if rows:
            L += [
                "| step | training-judge reward | gold-judge reward | gap | widening | trend / step | n | gold ungraded |",  # noqa: E501
                "|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for r in rows:
                gold = "skipped" if r.get("gold_judge_reward") is None else _f(r["gold_judge_reward"])
                trend = "-" if r.get("trend") is None else f"{r['trend']:+.4f}"
                L.append(
                    f"| {r['step']} | {_f(r.get('train_judge_reward'))} | {gold} | {_f(r.get('gap'), True)} | "
                    f"{_f(r.get('widening'), True)} | {trend} | {r.get('n')} | "
                    f"{r.get('gold_ungraded')}/{r.get('gold_verdicts')} |"
                )
            L.append("")
        for w in d.get("warnings") or []:
            L.append(f"- warning ({th.get('on_gap', 'warn')}): {w}")
        if d.get("warnings"):
            L.append("")
    return L


def drift_figure(stages: Mapping[str, dict[str, Any] | None]) -> Any:
    """Both judges' mean rewards per check (one panel per monitored stage), the gap dashed, skipped checks as x;
    None when no stage has checks. The caller closes the figure."""
    on = {k: v for k, v in stages.items() if v and v.get("rows")}
    if not on:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(on), figsize=(5.5 * len(on), 3.6), squeeze=False)
    for ax, (name, d) in zip(axes[0], on.items()):
        rows = d["rows"]
        valid = [r for r in rows if r.get("gold_judge_reward") is not None]
        skipped = [r for r in rows if r.get("gold_judge_reward") is None]
        ax.plot(
            [r["step"] for r in rows],
            [r["train_judge_reward"] for r in rows],
            marker="o",
            ms=4,
            color=OURS,
            label="training judge",
        )
        if valid:
            ax.plot(
                [r["step"] for r in valid],
                [r["gold_judge_reward"] for r in valid],
                marker="s",
                ms=4,
                color=SECOND,
                label="gold judge",
            )
            ax.plot(
                [r["step"] for r in valid],
                [r["gap"] for r in valid],
                linestyle="--",
                marker="^",
                ms=4,
                color=BASE,
                label="gap (train - gold)",
            )
        if skipped:
            ax.scatter(
                [r["step"] for r in skipped],
                [r["train_judge_reward"] for r in skipped],
                marker="x",
                s=40,
                color=WARN,
                zorder=3,
                label="gold skipped (mostly ungraded)",
            )
        warned = [r for r in rows if r.get("warning")]
        for r in warned:
            ax.axvline(r["step"], color=WARN, linestyle=":", linewidth=1)
        ax.axhline(0.0, color="#999999", linewidth=0.6)
        n_valid = len(valid)
        ax.set_title(
            f"{name}\n{n_valid} check{'' if n_valid == 1 else 's'} with a gold reward"
            + (f", {len(skipped)} skipped" if skipped else "")
            + (f", {len(warned)} warning(s)" if warned else ""),
            fontsize=9,
        )
        ax.set_xlabel("GRPO step")
        ax.set_ylabel("mean reward of the checked rollouts")
        steps = sorted({r["step"] for r in rows})
        if len(steps) == 1:  # one check: a readable axis around its step
            ax.set_xlim(steps[0] - 1, steps[0] + 1)
            ax.set_xticks(steps)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_drift(stages: Mapping[str, dict[str, Any] | None], path: Path) -> Path | None:
    """:func:`drift_figure` saved as PNG at ``path`` (None, and no file, when no stage has checks)."""
    fig = drift_figure(stages)
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return Path(path)


def drift_wandb_table(stages: Mapping[str, dict[str, Any] | None]) -> tuple[list[str], list[list[Any]]] | None:
    """The checks of every monitored stage as (columns, rows) for a ``wandb.Table``; None without checks."""
    rows = [
        [
            name,
            r.get("step"),
            r.get("train_judge_reward"),
            r.get("gold_judge_reward"),
            r.get("gap"),
            r.get("widening"),
            r.get("trend"),
            r.get("n"),
            r.get("gold_verdicts"),
            r.get("gold_ungraded"),
            r.get("skipped") or "",
            r.get("warning") or "",
        ]
        for name, d in stages.items()
        if d
        for r in d.get("rows") or []
    ]
    if not rows:
        return None
    return (
        [
            "stage",
            "step",
            "train_judge_reward",
            "gold_judge_reward",
            "gap",
            "widening",
            "trend",
            "n",
            "gold_verdicts",
            "gold_ungraded",
            "skipped",
            "warning",
        ],
        rows,
    )
