"""Pipeline report: markdown + PNG of a Rubicon run (before / after each stage), from the stage folders.

``write_rubicon_report(ctx)`` reads ``data``, ``filter``, ``stage1_rl``, ``hacking``, ``stage2_rl`` and
``eval`` outputs and writes ``report.md``, ``training_curves.png``, ``heldout.png`` (and copies the
filter histogram) into the report stage folder; ``report.md`` is also copied to ``runs/<run>/report.md``.
Every number comes from a file the stages wrote; the report states n and 95% intervals.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any


def _json(p: Path) -> Any:
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}


def _history(p: Path) -> list[dict[str, Any]]:
    if not p.is_file():
        return []
    return [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]


def plot_training(curves: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """Reward per step for each RL stage (one panel each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.2), squeeze=False)
    for ax, (name, hist) in zip(axes[0], curves.items()):
        rows = [h for h in hist if "reward" in h and "step" in h]
        ax.plot([h["step"] for h in rows], [h["reward"] for h in rows], marker="o", ms=3, label="reward")
        vr = [h for h in rows if "veto_rate" in h]
        if vr:
            ax.plot([h["step"] for h in vr], [h["veto_rate"] for h in vr], linestyle="--", label="veto rate")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_heldout(summary: dict[str, Any], path: Path) -> Path:
    """Prompt- and instruction-level held-out accuracy per model with 95% Wilson intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in ("base", "stage1", "stage2") if m in summary]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    width = 0.38
    for j, (key, label) in enumerate([("prompt_level", "prompt-level"), ("instruction_level", "instruction-level")]):
        vals = [summary[m][key] for m in models]
        err = [[v - summary[m][f"{key}_ci95"][0] for m, v in zip(models, vals)],
               [summary[m][f"{key}_ci95"][1] - v for m, v in zip(models, vals)]]
        ax.bar([i + (j - 0.5) * width for i in range(len(models))], vals, width, yerr=err, capsize=3, label=label)
    ax.set_xticks(range(len(models)), models)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (programmatic checks)")
    ax.set_title(f"held-out stage-1 prompts (n={summary[models[0]]['n']} samples)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def step_time_table(stages: dict[str, dict]) -> list[str]:
    """Mean step time per stage and its split (``timing`` of the stage metrics); empty when none has it."""
    rows = [(name, m["timing"]) for name, m in stages.items() if isinstance(m.get("timing"), dict) and m["timing"]]
    if not rows:
        return []
    out = ["", "Where a step's time goes (means over the logged steps; judge queue wait and compute are summed over "
           "the step's concurrent calls):", "",
           "| stage | step s | generation s | reward s | train s | reward share | judge queue wait s | judge compute s |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, t in rows:
        cells = [t.get(f"timing/{k}") for k in ("step_s", "generation_s", "reward_s", "train_s")]
        share = t.get("timing/reward_share")
        judge = [t.get("timing/judge_queue_wait_s"), t.get("timing/judge_compute_s")]
        out.append(f"| {name} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " | "
                   + ("-" if share is None else _pct(share)) + " | "
                   + " | ".join("-" if c is None else f"{c:.2f}" for c in judge) + " |")
    return out


def render(run: str, scale: str, data: dict, filt: dict, s1: dict, hack: dict, s2: dict, ev: dict,
           health: dict[str, dict] | None = None) -> str:
    """The report's markdown (``health``: stage label -> :mod:`rubricrl.report.judge_health` row)."""
    from rubricrl.report.judge_health import from_judge_stats, health_table

    L = [f"# Rubicon pipeline report: run `{run}` ({scale} scale)", "",
         f"Scale: **{scale}**. At tiny scale this is SmolLM2-135M-Instruct on CPU: a check that every stage "
         "of the method runs and moves the policy, not a replication of the paper's Qwen3-30B-A3B numbers.", "",
         "## Data", "",
         f"- stage-1 train prompts: {data.get('stage1_train')} ({data.get('stage1_constraints')} constraint rubrics); "
         f"held-out: {data.get('stage1_heldout')} (tasks never trained on, fixed seed)",
         f"- stage-2 train prompts: {data.get('stage2_train')}; held-out: {data.get('stage2_heldout')}", "",
         "## Offline filter", "",
         f"Kept {filt.get('kept')} of {filt.get('candidates')} prompts (band thresholds "
         f"{filt.get('threshold_low', 0):.3f}..{filt.get('threshold_high', 0):.3f}; dropped: {filt.get('dropped')}). "
         f"Mean base reward: all {filt.get('mean_reward_all', 0):.3f}, kept {filt.get('mean_reward_kept', 0):.3f}.", "",
         "![filter histogram](histogram.png)", "",
         "## Training", "",
         "| stage | steps | reward, first quarter | reward, last quarter | train seconds |", "|---|---:|---:|---:|---:|"]
    for name, m in (("stage 1", s1), ("stage 2", s2)):
        L.append(f"| {name} | {m.get('global_step')} | {m.get('reward_first_quarter', float('nan')):.3f} | "
                 f"{m.get('reward_last_quarter', float('nan')):.3f} | {m.get('train_seconds')} |")
    L += step_time_table({"stage 1": s1, "stage 2": s2})
    rows = dict(health or {})
    judged = (ev.get("stage2_heldout") or {}).get("judge")
    if isinstance(judged, dict) and judged:
        rows["held-out eval (stage-2 judge)"] = from_judge_stats(judged)
    table = health_table(rows)
    if table:
        L += ["", "## Judge and reward health", "",
              "Verdicts the rewards rest on (model-judged where a stage has any) and the judge's counters; steps "
              "with reward variance are steps where some prompt's sampled answers got different rewards (else "
              "GRPO has nothing to learn from).", ""] + table
    L += ["", "![training curves](training_curves.png)", "", "## Hacking analysis (after stage 1)", "",
          f"{hack.get('rollouts')} rollouts mined, top {hack.get('top')} (reward >= {hack.get('reward_cutoff', 0):.3f}). "
          "Pattern counts in the top slice: " + ", ".join(f"{k} {v}" for k, v in (hack.get("top_counts") or {}).items())
          + ". Full taxonomy: `hacking/taxonomy.md`. The defense rubric is applied as a veto in stage 2.", ""]
    h = ev.get("stage1_heldout", {})
    if h:
        L += ["## Held-out evaluation: stage-1 prompts, programmatic checks", "",
              f"Decoding: {ev.get('decoding')}.", "",
              "| model | n samples | prompt-level (95% Wilson CI) | instruction-level (95% CI) | mean reward | "
              "hacking patterns |", "|---|---:|---|---|---:|---:|"]
        for m in ("base", "stage1", "stage2"):
            if m in h:
                s = h[m]
                L.append(f"| {m} | {s['n']} | {_pct(s['prompt_level'])} ({_pct(s['prompt_level_ci95'][0])}.."
                         f"{_pct(s['prompt_level_ci95'][1])}) | {_pct(s['instruction_level'])} "
                         f"({_pct(s['instruction_level_ci95'][0])}..{_pct(s['instruction_level_ci95'][1])}) | "
                         f"{s['mean_reward']:.3f} | {_pct(s.get('hacking_rate', 0.0))} |")
        L += ["", "Hacking patterns: share of samples where a defense detector fires (repetition, sycophancy, ...); "
              "the constraint checks alone do not see them.", "",
              "| difference to base (paired over prompts) | prompt-level (95% bootstrap CI) | reward (95% CI) |",
              "|---|---|---|"]
        for m in ("stage1", "stage2"):
            d = h.get(f"{m}_minus_base")
            if d:
                L.append(f"| {m} - base (n={d['n_prompts']} prompts) | {100 * d['prompt_level']:+.1f} pts "
                         f"({100 * d['prompt_level_ci95'][0]:+.1f}..{100 * d['prompt_level_ci95'][1]:+.1f}) | "
                         f"{d['reward']:+.3f} ({d['reward_ci95'][0]:+.3f}..{d['reward_ci95'][1]:+.3f}) |")
        L += ["", "![held-out accuracy](heldout.png)", ""]
    s2h = ev.get("stage2_heldout")
    if s2h:
        L += ["## Held-out evaluation: stage-2 prompts, judged", "",
              "Judge counters: see Judge and reward health above. A 135M judge is a weak grader: these numbers "
              "exercise the path.", "",
              "| model | n | mean reward | task reward | veto rate | ungraded verdicts |", "|---|---:|---:|---:|---:|---:|"]
        for m in ("base", "stage1", "stage2"):
            if m in s2h:
                s = s2h[m]
                L.append(f"| {m} | {s['n']} | {s['mean_reward']:.3f} | {s['mean_task_reward']:.3f} | "
                         f"{_pct(s['veto_rate'])} | {s['ungraded']} |")
        L.append("")
    return "\n".join(L)


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
    plot_training({"stage 1": _history(run_dir / "stage1_rl" / "log_history.jsonl"),
                   "stage 2": _history(run_dir / "stage2_rl" / "log_history.jsonl")}, out / "training_curves.png")
    if ev.get("stage1_heldout"):
        plot_heldout(ev["stage1_heldout"], out / "heldout.png")
    from rubricrl.report.judge_health import stage_health

    health = {"stage 1 (train)": stage_health(run_dir / "stage1_rl"),
              "stage 2 (train)": stage_health(run_dir / "stage2_rl")}
    md = render(ctx.cfg.run.name, ctx.cfg.run.scale, data, filt, s1, hack, s2, ev, health)
    (out / "report.md").write_text(md, encoding="utf-8")
    for png in out.glob("*.png"):
        shutil.copy(png, run_dir / png.name)
    (run_dir / "report.md").write_text(md, encoding="utf-8")
    h = ev.get("stage1_heldout", {})
    return {"report": str(out / "report.md"),
            **{f"heldout_{m}_prompt_level": h[m]["prompt_level"] for m in ("base", "stage1", "stage2") if m in h}}
