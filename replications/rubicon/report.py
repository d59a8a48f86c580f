"""Rubicon's report stage: markdown + PNG of a run (before / after each stage), from the stage folders.

``write_report(ctx)`` reads ``data``, ``filter``, ``stage1_rl``, ``hacking``, ``stage2_rl`` and
``eval`` outputs and writes ``report.md``, ``training_curves.png``, ``heldout.png``, ``drift_monitor.png`` (the
gold-judge drift monitor's checks, when it ran; :mod:`rubricrl.report.drift`) and copies the filter histogram into
the report stage folder; ``report.md`` is also copied to ``runs/<run>/report.md``.
Every number comes from a file the stages wrote; the report states n and 95% intervals.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from rubricrl.report.drift import PLOT, drift_section, drift_wandb_table, plot_drift, stage_drift
from rubricrl.report.judge_health import from_judge_stats, health_table, stage_health
from rubricrl.report.run_report import (
    drift_numbers,
    flat_numbers,
    health_steps,
    items_text,
    log_pipeline_wandb,
    pct,
    plot_training,
    pyplot,
    read_history,
    read_json,
    save_figure,
    step_time_table,
)
from rubricrl.report.style import BASE, OURS


def _levels_coincide(summary: dict[str, Any], models: list[str]) -> bool:
    return all(math.isclose(summary[m]["prompt_level"], summary[m]["instruction_level"], abs_tol=1e-12) for m in models)


def heldout_figure(summary: dict[str, Any]):
    """Held-out accuracy per model with 95% Wilson intervals: prompt- and instruction-level bars, or one bar
    per model when the two are equal for every model (every prompt carries one instruction). The base model is
    grey, the trained ones take our colour; the caller closes the figure."""

    plt = pyplot()
    models = [m for m in ("base", "stage1", "stage2") if m in summary]
    colours = [BASE if m == "base" else OURS for m in models]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    one = _levels_coincide(summary, models)
    levels = (
        [("prompt_level", "prompt-level = instruction-level (one instruction per prompt)")]
        if one
        else [("prompt_level", "prompt-level (all instructions met)"), ("instruction_level", "instruction-level")]
    )
    width = 0.6 if one else 0.38
    for j, (key, label) in enumerate(levels):
        vals = [summary[m][key] for m in models]
        err = [
            [v - summary[m][f"{key}_ci95"][0] for m, v in zip(models, vals)],
            [summary[m][f"{key}_ci95"][1] - v for m, v in zip(models, vals)],
        ]
        offset = 0.0 if one else (j - 0.5) * width
        ax.bar(
            [i + offset for i in range(len(models))],
            vals,
            width,
            yerr=err,
            capsize=3,
            label=label,
            color=colours,
            edgecolor="black",
            hatch="//" if j == 1 else None,
        )
    ax.set_xticks(range(len(models)), models)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (programmatic checks)")
    ax.set_title(f"held-out stage-1 prompts (n={summary[models[0]]['n']} samples per model)", fontsize=9)
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor="white", edgecolor="black", hatch="//" if j == 1 else None, label=label)
        for j, (_, label) in enumerate(levels)
    ]
    ax.legend(handles=handles, fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_heldout(summary: dict[str, Any], path: Path) -> Path:
    """:func:`heldout_figure` saved as PNG."""
    return save_figure(heldout_figure(summary), path)


def _filter_text(filt: dict, band: tuple[float, float] | None) -> str:
    if filt.get("enabled") is False:
        return f"Filter off: all {filt.get('candidates')} prompts kept."
    where = (
        f"per-prompt mean base reward within the central quantile band [{band[0]:g}, {band[1]:g}] of all prompts' means"
        if band
        else "per-prompt mean base reward within the central quantile band"
    )
    return (
        f"Kept {filt.get('kept')} of {filt.get('candidates')} prompts: {where}, i.e. a mean reward from "
        f"{filt.get('threshold_low', 0):.3f} to {filt.get('threshold_high', 0):.3f} (inclusive), and rewards that "
        f"vary across the k samples. Dropped: {items_text(filt.get('dropped'), words=True)}. "
        f"Mean base reward: all {filt.get('mean_reward_all', 0):.3f}, kept {filt.get('mean_reward_kept', 0):.3f}."
    )


def render(
    run: str,
    scale: str,
    data: dict,
    filt: dict,
    s1: dict,
    hack: dict,
    s2: dict,
    ev: dict,
    health: dict[str, dict] | None = None,
    band: tuple[float, float] | None = None,
    drift: dict[str, dict | None] | None = None,
) -> str:
    """The report's markdown (``health``: stage label -> :mod:`rubricrl.report.judge_health` row; ``band``: the
    configured ``rubicon.filter.band`` quantiles, the histogram's band; ``drift``: stage label -> its drift-monitor
    summary with rows, :func:`rubricrl.report.drift.stage_drift`; None leaves the section out)."""

    L = [
        f"# Rubicon pipeline report: run `{run}` ({scale} scale)",
        "",
        f"Scale: **{scale}**. At tiny scale this is SmolLM2-135M-Instruct on CPU: a check that every stage "
        "of the method runs and moves the policy, not a replication of the paper's Qwen3-30B-A3B numbers.",
        "",
        "## Data",
        "",
        f"- stage-1 train prompts: {data.get('stage1_train')} ({data.get('stage1_constraints')} constraint rubrics); "
        f"held-out: {data.get('stage1_heldout')} (tasks never trained on, fixed seed)",
        f"- stage-2 train prompts: {data.get('stage2_train')}; held-out: {data.get('stage2_heldout')}",
        "",
        "## Offline filter",
        "",
        _filter_text(filt, band),
        "",
        "![filter histogram](histogram.png)",
        "",
        "## Training",
        "",
        "| stage | steps | reward, first quarter | reward, last quarter | train seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, m in (("stage 1", s1), ("stage 2", s2)):
        L.append(
            f"| {name} | {m.get('global_step')} | {m.get('reward_first_quarter', float('nan')):.3f} | "
            f"{m.get('reward_last_quarter', float('nan')):.3f} | {m.get('train_seconds')} |"
        )
    L += step_time_table({"stage 1": s1, "stage 2": s2})
    rows = dict(health or {})
    judged = (ev.get("stage2_heldout") or {}).get("judge")
    if isinstance(judged, dict) and judged:
        rows["held-out eval (stage-2 judge)"] = from_judge_stats(judged)
    table = health_table(rows)
    if table:
        L += [
            "",
            "## Judge and reward health",
            "",
            "Verdicts the rewards rest on (model-judged where a stage has any) and the judge's counters; steps "
            "with reward variance are steps where some prompt's sampled answers got different rewards (else "
            "GRPO has nothing to learn from).",
            "",
        ] + table
    L += ["", "![training curves](training_curves.png)", ""]
    if drift is not None:
        L += drift_section(drift)
        if any(d and d.get("rows") for d in drift.values()):
            L += [f"![gold-judge drift]({PLOT})", ""]
    hack_drift = hack.get("drift_monitor") or {}
    L += [
        "## Hacking analysis (after stage 1)",
        "",
        f"{hack.get('rollouts')} rollouts mined, top {hack.get('top')} (reward >= {hack.get('reward_cutoff', 0):.3f}). "
        "Pattern counts in the top slice: "
        + ", ".join(f"{k} {v}" for k, v in (hack.get("top_counts") or {}).items())
        + ". Full taxonomy: `hacking/taxonomy.md`. The defense rubric is applied as a veto in stage 2."
        + (f" Gold-judge drift during stage 1: {hack_drift['verdict']}." if hack_drift.get("verdict") else ""),
        "",
    ]
    h = ev.get("stage1_heldout", {})
    if h:
        L += [
            "## Held-out evaluation: stage-1 prompts, programmatic checks",
            "",
            f"Decoding: {items_text(ev.get('decoding'))}.",
            "",
            "| model | n samples | prompt-level (95% Wilson CI) | instruction-level (95% CI) | mean reward | "
            "hacking patterns |",
            "|---|---:|---|---|---:|---:|",
        ]
        for m in ("base", "stage1", "stage2"):
            if m in h:
                s = h[m]
                L.append(
                    f"| {m} | {s['n']} | {pct(s['prompt_level'])} ({pct(s['prompt_level_ci95'][0])}.."
                    f"{pct(s['prompt_level_ci95'][1])}) | {pct(s['instruction_level'])} "
                    f"({pct(s['instruction_level_ci95'][0])}..{pct(s['instruction_level_ci95'][1])}) | "
                    f"{s['mean_reward']:.3f} | {pct(s.get('hacking_rate', 0.0))} |"
                )
        L += [
            "",
            "Hacking patterns: share of samples where a defense detector fires (repetition, sycophancy, ...); "
            "the constraint checks alone do not see them.",
            "",
            "| difference to base (paired over prompts) | prompt-level (95% bootstrap CI) | reward (95% CI) |",
            "|---|---|---|",
        ]
        for m in ("stage1", "stage2"):
            d = h.get(f"{m}_minus_base")
            if d:
                L.append(
                    f"| {m} - base (n={d['n_prompts']} prompts) | {100 * d['prompt_level']:+.1f} pts "
                    f"({100 * d['prompt_level_ci95'][0]:+.1f}..{100 * d['prompt_level_ci95'][1]:+.1f}) | "
                    f"{d['reward']:+.3f} ({d['reward_ci95'][0]:+.3f}..{d['reward_ci95'][1]:+.3f}) |"
                )
        L += ["", "![held-out accuracy](heldout.png)", ""]
    s2h = ev.get("stage2_heldout")
    if s2h:
        L += [
            "## Held-out evaluation: stage-2 prompts, judged",
            "",
            "Judge counters: see Judge and reward health above. A 135M judge is a weak grader: these numbers "
            "exercise the path.",
            "",
            "| model | n | mean reward | task reward | veto rate | ungraded verdicts |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for m in ("base", "stage1", "stage2"):
            if m in s2h:
                s = s2h[m]
                L.append(
                    f"| {m} | {s['n']} | {s['mean_reward']:.3f} | {s['mean_task_reward']:.3f} | "
                    f"{pct(s['veto_rate'])} | {s['ungraded']} |"
                )
        L.append("")
    return "\n".join(L)


def _eval_tables(ev: dict[str, Any]) -> dict[str, tuple[list[str], list[list[Any]]]]:
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {}
    h = ev.get("stage1_heldout") or {}
    rows = [
        [
            m,
            s["n"],
            s["prompt_level"],
            *s["prompt_level_ci95"],
            s["instruction_level"],
            *s["instruction_level_ci95"],
            s["mean_reward"],
            s.get("hacking_rate"),
        ]
        for m in ("base", "stage1", "stage2")
        if (s := h.get(m))
    ]
    if rows:
        tables["eval/stage1_heldout"] = (
            [
                "model",
                "n",
                "prompt_level",
                "prompt_level_ci_low",
                "prompt_level_ci_high",
                "instruction_level",
                "instruction_level_ci_low",
                "instruction_level_ci_high",
                "mean_reward",
                "hacking_rate",
            ],
            rows,
        )
    h2 = ev.get("stage2_heldout") or {}
    rows = [
        [m, s["n"], s["mean_reward"], s["mean_task_reward"], s["veto_rate"], s["ungraded"]]
        for m in ("base", "stage1", "stage2")
        if (s := h2.get(m))
    ]
    if rows:
        tables["eval/stage2_heldout"] = (
            ["model", "n", "mean_reward", "mean_task_reward", "veto_rate", "ungraded"],
            rows,
        )
    return tables


def write_report(ctx: Any) -> dict[str, Any]:
    """The report stage (see the module docstring)."""
    run_dir: Path = ctx.run_dir
    out: Path = ctx.dir
    data = read_json(run_dir / "data" / "metrics.json")
    filt = read_json(run_dir / "filter" / "filter_stats.json")
    s1 = read_json(run_dir / "stage1_rl" / "metrics.json")
    s2 = read_json(run_dir / "stage2_rl" / "metrics.json")
    hack = read_json(run_dir / "hacking" / "metrics.json")
    ev = read_json(run_dir / "eval" / "eval.json")
    if (run_dir / "filter" / "histogram.png").is_file():
        shutil.copy(run_dir / "filter" / "histogram.png", out / "histogram.png")
    plot_training(
        {
            "stage 1": read_history(run_dir / "stage1_rl" / "log_history.jsonl"),
            "stage 2": read_history(run_dir / "stage2_rl" / "log_history.jsonl"),
        },
        out / "training_curves.png",
        {"stage 1": health_steps(run_dir / "stage1_rl"), "stage 2": health_steps(run_dir / "stage2_rl")},
    )
    if ev.get("stage1_heldout"):
        plot_heldout(ev["stage1_heldout"], out / "heldout.png")

    health = {
        "stage 1 (train)": stage_health(run_dir / "stage1_rl"),
        "stage 2 (train)": stage_health(run_dir / "stage2_rl"),
    }
    drift = {"stage 1": stage_drift(run_dir / "stage1_rl"), "stage 2": stage_drift(run_dir / "stage2_rl")}
    plot_drift(drift, out / PLOT)
    band = tuple(ctx.cfg.section("rubicon").filter.band)
    md = render(ctx.cfg.run.name, ctx.cfg.run.scale, data, filt, s1, hack, s2, ev, health, band, drift)
    (out / "report.md").write_text(md, encoding="utf-8")
    for png in out.glob("*.png"):
        shutil.copy(png, run_dir / png.name)
    (run_dir / "report.md").write_text(md, encoding="utf-8")
    h = ev.get("stage1_heldout", {})
    summary = {k: v for k, v in flat_numbers(ev, "eval/").items() if "/judge/" not in k}
    summary.update(drift_numbers(drift))
    monitor_table = drift_wandb_table(drift)
    wandb_runs = log_pipeline_wandb(
        ctx.cfg,
        run_dir,
        out,
        md,
        summary,
        _eval_tables(ev),
        {"eval/heldout": out / "heldout.png"},
        {"report/drift_monitor_checks": monitor_table} if monitor_table else None,
    )
    return {
        "report": str(out / "report.md"),
        "wandb": wandb_runs,
        "drift_monitor": {
            k: {f: d.get(f) for f in ("checks", "valid_checks", "widening", "warnings", "verdict")}
            for k, d in drift.items()
            if d
        },
        **{f"heldout_{m}_prompt_level": h[m]["prompt_level"] for m in ("base", "stage1", "stage2") if m in h},
    }
