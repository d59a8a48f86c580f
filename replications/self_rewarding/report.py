"""The self-rewarding report: ``report.md`` and PNG plots in ``runs/<run>/report/``.

Reads the finished stages' ``metrics.json``, the training log (``train/log_history.jsonl``), the
self-versus-teacher agreement (``train/agreement.jsonl``) and the stage markers (timings). Plots:
``reward.png`` (self-graded reward per step), ``before_after.png`` (held-out score with bootstrap std),
``agreement.png`` (per-step agreement and kappa, when a teacher graded), ``drift_monitor.png`` (both judges'
rewards per gold-judge drift check, when the monitor ran; :mod:`rubricrl.report.drift`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from replications.self_rewarding.common import read_agreement
from replications.self_rewarding.config import SECTION
from rubricrl.jsonl import read_jsonl
from rubricrl.report.drift import PLOT, drift_section, drift_wandb_table, plot_drift, stage_drift
from rubricrl.report.judge_health import health_table, stage_health
from rubricrl.report.paper_tables import load_paper_tables
from rubricrl.report.run_report import drift_numbers, flat_numbers, log_pipeline_wandb, step_time_table
from rubricrl.report.style import BASE, OURS, SECOND
from rubricrl.train.stages import DONE, StageContext

log = logging.getLogger(__name__)

REWARD_KEYS = ("rewards/self_reward/mean", "reward")


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _history(path: Path) -> list[dict[str, Any]]:
    return read_jsonl(path)


def reward_curve(history: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """(step, mean self-graded reward) from TRL's log history."""
    out = []
    for row in history:
        for k in REWARD_KEYS:
            if k in row and "step" in row:
                out.append((int(row["step"]), float(row[k])))
                break
    return out


def _plots(
    out: Path, curve: list[tuple[int, float]], ev: dict[str, Any], agree_rows: list[dict[str, Any]]
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    made = []
    if curve:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot([s for s, _ in curve], [r for _, r in curve], marker="o", color=OURS)
        ax.set_xlabel("GRPO step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("self-graded reward (points ratio)")
        ax.set_title("Training reward (graded by the policy itself)")
        fig.tight_layout()
        fig.savefig(out / "reward.png", dpi=110)
        plt.close(fig)
        made.append("reward.png")
    labels = [k for k in ("before", "after") if k in ev]
    if labels:
        fig, ax = plt.subplots(figsize=(4, 3))
        vals = [ev[k]["overall_score"] for k in labels]
        errs = [ev[k]["overall_score:bootstrap_std"] for k in labels]
        ax.bar(
            labels,
            vals,
            yerr=errs,
            capsize=6,
            color=[BASE if k == "before" else OURS for k in labels],
            edgecolor="black",
        )
        ax.set_ylabel("overall_score (fixed judge)")
        ax.set_title(f"Held-out HealthBench, n={ev[labels[0]]['overall_score:n_samples']}")
        fig.tight_layout()
        fig.savefig(out / "before_after.png", dpi=110)
        plt.close(fig)
        made.append("before_after.png")
    pts = [(r["step"], r["agreement"], r["kappa"]) for r in agree_rows if r.get("agreement") is not None]
    if pts:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=OURS, label="agreement")
        ax.plot(
            [p[0] for p in pts if p[2] is not None],
            [p[2] for p in pts if p[2] is not None],
            marker="s",
            color=SECOND,
            label="Cohen's kappa",
        )
        ax.set_xlabel("GRPO step")
        ax.set_ylabel("agreement share / kappa")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title("Self vs teacher verdicts (overlap)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "agreement.png", dpi=110)
        plt.close(fig)
        made.append("agreement.png")
    return made


def _fmt(x: Any, nd: int = 4) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def judge_text(judge: Any) -> str:
    """A judge summary (``judge_summary`` of the eval stage) as words: model first, then its settings."""
    if not isinstance(judge, dict):
        return "n/a" if judge is None else str(judge)
    rest = ", ".join(f"{k} {v}" for k, v in judge.items() if k not in ("model", "template_sha256") and v is not None)
    return f"`{judge.get('model', '?')}`" + (f" ({rest})" if rest else "")


def _paper_rows() -> list[str]:
    try:
        tables = load_paper_tables("self_rewarding")
    except Exception as e:  # noqa: BLE001 - the report is written without the paper table then
        log.warning("paper table unavailable: %s", e)
        return ["(paper table unavailable)"]
    lines = ["| Model / method (paper) | HealthBench Hard |", "|---|---|"]
    for t in tables:
        for row in t.rows:
            lines.append(f"| {row.model} | {next(iter(row.values.values()))} |")
    return lines


def write_report(ctx: StageContext) -> dict[str, Any]:
    """Write the report into the stage folder; returns the headline numbers."""

    cfg = ctx.cfg
    sr = cfg.section(SECTION)
    run = ctx.run_dir
    data, train, ev = (_json(run / s / "metrics.json") for s in ("data", "train", "eval"))
    curve = reward_curve(_history(run / "train" / "log_history.jsonl"))
    agree_rows, agree = read_agreement(run / "train" / "agreement.jsonl")
    plots = _plots(ctx.dir, curve, ev, agree_rows)
    timings = {s: _json(run / s / DONE).get("seconds") for s in ("data", "train", "eval")}
    g, t = sr.grader, sr.teacher
    teacher = (
        "none"
        if t.fraction == 0
        else f"{t.grader.kind}:{t.grader.model} on {t.fraction:.0%} of samples, replace={t.replace}"
    )
    L = [f"# Self-rewarding rubric RL: run `{cfg.run.name}` ({cfg.run.scale} scale)", ""]
    if cfg.run.scale != "paper":
        L += [
            f"**Scale: {cfg.run.scale}.** Policy `{cfg.policy.name}`, {cfg.grpo.max_steps} GRPO steps. "
            "This run exercises the paper's pipeline end to end; "
            "it is not a replication of the paper's 32B / 8B numbers.",
            "",
        ]
    L += [
        "## Setup",
        "",
        f"- data: `{sr.data.subset}`, {data.get('pool', '?')} examples; "
        f"train {data.get('train', {}).get('examples', '?')}, "
        f"held-out {data.get('heldout', {}).get('examples', '?')} "
        f"({sr.data.eval_subset}, split seed {sr.data.split_seed})",
        f"- self grader: `{g.engine}` (the policy, current weights each step), template `{g.template}`, "
        f"T={g.temperature:g}, top_p={g.top_p}, top_k={g.top_k}; verdict by constrained decoding (verdict first, "
        "no explanation)"
        if g.engine == "live"
        else f"- self grader: `{g.engine}` (the policy's engine endpoint)",
        f"- teacher: {teacher}",
        f"- GRPO: lr {cfg.grpo.learning_rate:g} ({cfg.grpo.lr_scheduler_type}, warmup {cfg.grpo.warmup_steps}), "
        f"beta {cfg.grpo.beta:g}, clip {cfg.grpo.epsilon:g}/{cfg.grpo.epsilon_high:g}, loss `{cfg.grpo.loss_type}`, "
        f"{cfg.grpo.prompts_per_step} prompts x {cfg.grpo.num_generations} samples, max completion "
        f"{cfg.grpo.max_completion_length} tokens, rollout T={cfg.grpo.temperature:g}",
        f"- evaluation judge (fixed): {judge_text(ev.get('judge'))}",
        "",
    ]
    L += [
        "## Training",
        "",
        f"steps: {train.get('global_step', '?')}, train time {_fmt(train.get('train_seconds'), 1)} s",
        "",
    ]

    timing = step_time_table({"train (self grader)": train})
    if timing:
        L += timing[1:] + [""]
    health = health_table({"train (self grader)": stage_health(run / "train")})
    if health:
        L += (
            [
                "### Grader and reward health",
                "",
                "Verdicts behind the training rewards and the grader's counters; steps with reward variance are steps "
                "where some prompt's sampled answers got different rewards (else GRPO has nothing to learn from).",
                "",
            ]
            + health
            + [""]
        )
    if curve:
        L += ["| step | self-graded reward |", "|---|---|"] + [f"| {s} | {r:.4f} |" for s, r in curve] + [""]
    if "reward.png" in plots:
        L += ["![reward](reward.png)", ""]

    drift = {"train": stage_drift(run / "train")}
    L += drift_section(drift, heading="###")
    if plot_drift(drift, ctx.dir / PLOT) is not None:
        plots.append(PLOT)
        L += [f"![gold-judge drift]({PLOT})", ""]
    L += [
        "## Held-out evaluation (fixed judge)",
        "",
        "| policy | overall_score | bootstrap std | n | ungraded verdicts | mean words |",
        "|---|---|---|---|---|---|",
    ]
    for k in ("before", "after"):
        if k in ev:
            e = ev[k]
            L.append(
                f"| {k} | {_fmt(e['overall_score'])} | {_fmt(e['overall_score:bootstrap_std'])} | "
                f"{e['overall_score:n_samples']} | {e['n_ungraded']} | {_fmt(e.get('mean_response_words'), 1)} |"
            )
    d = ev.get("difference")
    if d:
        L += [
            "",
            f"after - before: {d['after_minus_before']:+.4f}, paired bootstrap 95% CI "
            f"[{d['ci95_low']:+.4f}, {d['ci95_high']:+.4f}] (n={d['n_paired']})",
        ]
    if "before_after.png" in plots:
        L += ["", "![before/after](before_after.png)"]
    L += ["", "## Self vs teacher agreement (overlap)", ""]
    if agree["n"]:
        L += [
            f"items graded by both: {agree['n']}; agreement {_fmt(agree['agreement'])}, Cohen's kappa "
            f"{_fmt(agree['kappa'])}; 'met' rate self {_fmt(agree['self_true_rate'])} vs teacher "
            f"{_fmt(agree['teacher_true_rate'])}"
        ]
        if "agreement.png" in plots:
            L += ["", "![agreement](agreement.png)"]
    else:
        L += ["no teacher in this run (self_rewarding.teacher.fraction = 0)"]
    L += ["", "## Paper numbers (HealthBench Hard, graded by GPT-4.1)", ""] + _paper_rows()
    L += ["", "## Stage timings (s)", "", "| stage | seconds |", "|---|---|"]
    L += [f"| {s} | {_fmt(v, 1)} |" for s, v in timings.items()]
    (ctx.dir / "report.md").write_text("\n".join(L) + "\n", encoding="utf-8")
    print(f"[report] {ctx.dir / 'report.md'}", flush=True)

    rows = [
        [
            k,
            ev[k].get("overall_score"),
            ev[k].get("overall_score:bootstrap_std"),
            ev[k].get("overall_score:n_samples"),
            ev[k].get("n_ungraded"),
            ev[k].get("mean_response_words"),
        ]
        for k in ("before", "after")
        if k in ev
    ]
    tables = (
        {"eval/heldout": (["policy", "overall_score", "bootstrap_std", "n", "n_ungraded", "mean_words"], rows)}
        if rows
        else {}
    )

    monitor_table = drift_wandb_table(drift)
    wandb_runs = log_pipeline_wandb(
        cfg,
        run,
        ctx.dir,
        "\n".join(L) + "\n",
        {**flat_numbers(ev, "eval/"), **drift_numbers(drift)},
        tables,
        {"eval/before_after": ctx.dir / "before_after.png"},
        {"report/drift_monitor_checks": monitor_table} if monitor_table else None,
    )
    d = drift["train"]
    return {
        "report": str(ctx.dir / "report.md"),
        "plots": plots,
        "timings": timings,
        "wandb": wandb_runs,
        "drift_monitor": {f: d.get(f) for f in ("checks", "valid_checks", "widening", "warnings", "verdict")}
        if d
        else None,
        "before": ev.get("before", {}).get("overall_score"),
        "after": ev.get("after", {}).get("overall_score"),
        "self_vs_teacher": agree,
    }
