"""Pipeline report: markdown + PNG of a Rubicon run (before / after each stage), from the stage folders.

``write_rubicon_report(ctx)`` reads ``data``, ``filter``, ``stage1_rl``, ``hacking``, ``stage2_rl`` and
``eval`` outputs and writes ``report.md``, ``training_curves.png``, ``heldout.png``, ``drift_monitor.png`` (the
gold-judge drift monitor's checks, when it ran; :mod:`rubricrl.report.drift`) and copies the filter histogram into
the report stage folder; ``report.md`` is also copied to ``runs/<run>/report.md``.
Every number comes from a file the stages wrote; the report states n and 95% intervals.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any


def _json(p: Path) -> Any:
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}


def _history(p: Path) -> list[dict[str, Any]]:
    if not p.is_file():
        return []
    return [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def health_steps(stage_dir: Path) -> list[dict[str, Any]]:
    """Per-step reward-health rows of a training stage (``step``, ``n_verdicts``, ``n_ungraded``, ...), or []."""
    metrics = _json(stage_dir / "metrics.json")
    rows = (metrics.get("reward_health") or {}).get("steps") if isinstance(metrics, dict) else None
    if not rows:
        saved = _json(stage_dir / "reward_health.json")
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

    from rubricrl.report.style import OURS, SECOND, WARN

    plt = _pyplot()
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
    return _save(training_figure(curves, health), path)


def _levels_coincide(summary: dict[str, Any], models: list[str]) -> bool:
    return all(math.isclose(summary[m]["prompt_level"], summary[m]["instruction_level"], abs_tol=1e-12) for m in models)


def heldout_figure(summary: dict[str, Any]):
    """Held-out accuracy per model with 95% Wilson intervals: prompt- and instruction-level bars, or one bar
    per model when the two are equal for every model (every prompt carries one instruction). The base model is
    grey, the trained ones take our colour; the caller closes the figure."""
    from rubricrl.report.style import BASE, OURS

    plt = _pyplot()
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
    return _save(heldout_figure(summary), path)


def _pct(x: float) -> str:
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
            + ("-" if share is None else _pct(share))
            + " | "
            + " | ".join("-" if c is None else f"{c:.2f}" for c in judge)
            + " |"
        )
    return out


def _items(d: Any, words: bool = False) -> str:
    """A mapping as ``key value, ...`` (``words``: underscores as spaces), never as a Python dict."""
    if not isinstance(d, dict) or not d:
        return "none"
    return ", ".join(
        f"{str(k).replace('_', ' ') if words else k} {f'{v:g}' if isinstance(v, float) else v}" for k, v in d.items()
    )


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
        f"vary across the k samples. Dropped: {_items(filt.get('dropped'), words=True)}. "
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
    from rubricrl.report.judge_health import from_judge_stats, health_table

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
        from rubricrl.report.drift import PLOT, drift_section

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
            f"Decoding: {_items(ev.get('decoding'))}.",
            "",
            "| model | n samples | prompt-level (95% Wilson CI) | instruction-level (95% CI) | mean reward | "
            "hacking patterns |",
            "|---|---:|---|---|---:|---:|",
        ]
        for m in ("base", "stage1", "stage2"):
            if m in h:
                s = h[m]
                L.append(
                    f"| {m} | {s['n']} | {_pct(s['prompt_level'])} ({_pct(s['prompt_level_ci95'][0])}.."
                    f"{_pct(s['prompt_level_ci95'][1])}) | {_pct(s['instruction_level'])} "
                    f"({_pct(s['instruction_level_ci95'][0])}..{_pct(s['instruction_level_ci95'][1])}) | "
                    f"{s['mean_reward']:.3f} | {_pct(s.get('hacking_rate', 0.0))} |"
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
                    f"{_pct(s['veto_rate'])} | {s['ungraded']} |"
                )
        L.append("")
    return "\n".join(L)


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
    import logging

    from rubricrl.train.wandb_log import log_stage_run

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


def _rubicon_eval_tables(ev: dict[str, Any]) -> dict[str, tuple[list[str], list[list[Any]]]]:
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


def write_rubicon_report(ctx: Any) -> dict[str, Any]:
    """The report stage (see the module docstring)."""
    run_dir: Path = ctx.run_dir
    out: Path = ctx.dir
    data = _json(run_dir / "data" / "metrics.json")
    filt = _json(run_dir / "filter" / "filter_stats.json")
    s1 = _json(run_dir / "stage1_rl" / "metrics.json")
    s2 = _json(run_dir / "stage2_rl" / "metrics.json")
    hack = _json(run_dir / "hacking" / "metrics.json")
    ev = _json(run_dir / "eval" / "eval.json")
    if (run_dir / "filter" / "histogram.png").is_file():
        shutil.copy(run_dir / "filter" / "histogram.png", out / "histogram.png")
    plot_training(
        {
            "stage 1": _history(run_dir / "stage1_rl" / "log_history.jsonl"),
            "stage 2": _history(run_dir / "stage2_rl" / "log_history.jsonl"),
        },
        out / "training_curves.png",
        {"stage 1": health_steps(run_dir / "stage1_rl"), "stage 2": health_steps(run_dir / "stage2_rl")},
    )
    if ev.get("stage1_heldout"):
        plot_heldout(ev["stage1_heldout"], out / "heldout.png")
    from rubricrl.report.drift import PLOT, drift_wandb_table, plot_drift, stage_drift
    from rubricrl.report.judge_health import stage_health

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
        _rubicon_eval_tables(ev),
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


def drift_numbers(drift: dict[str, dict | None]) -> dict[str, float]:
    """The drift monitors' headline numbers for a W&B summary: ``monitor/<stage>/{last_gap,widening,...}``."""
    out: dict[str, float] = {}
    for name, d in drift.items():
        for k in ("checks", "valid_checks", "skipped_checks", "first_gap", "last_gap", "widening", "trend"):
            v = (d or {}).get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f"monitor/{name.replace(' ', '')}/{k}"] = v
    return out
