"""The pipeline reports' figures and text (Rubicon), and their W&B runs (eval and report, offline, stable ids)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from replications.rubicon.report import heldout_figure, render, write_report
from rubricrl.report.run_report import training_figure
from tests.report.helpers import wandb_run_record


def _model(prompt: float, inst: float, n: int = 120) -> dict:
    return {
        "n": n,
        "prompt_level": prompt,
        "prompt_level_ci95": [prompt - 0.08, prompt + 0.08],
        "instruction_level": inst,
        "instruction_level_ci95": [inst - 0.06, inst + 0.06],
        "mean_reward": prompt,
        "hacking_rate": 0.05,
    }


HEALTH = [{"step": s, "n_verdicts": 40, "n_ungraded": 2 * s, "varied": s != 3} for s in (1, 2, 3)]


def test_training_curves_have_labels_integer_steps_and_judge_health():
    import matplotlib.pyplot as plt

    hist = [{"step": s, "reward": 0.2 + 0.1 * s, "veto_rate": 0.1} for s in (1, 2, 3)]
    fig = training_figure({"stage 1": hist, "stage 2": hist}, {"stage 2": HEALTH})
    try:
        fig.canvas.draw()
        for ax in fig.axes:
            assert ax.get_ylabel() and ax.get_xlabel() == "GRPO step"
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks)
        one, two = fig.axes
        assert "ungraded verdict share" not in one.get_legend_handles_labels()[1]
        assert "not recorded" in one.get_title()
        from matplotlib.colors import to_hex

        from rubricrl.report.style import OURS

        assert {
            to_hex(line.get_color()) for ax in fig.axes for line in ax.get_lines() if line.get_label() == "mean reward"
        } == {OURS}
        (ungraded,) = [line for line in two.get_lines() if line.get_label() == "ungraded verdict share"]
        assert list(ungraded.get_ydata()) == pytest.approx([0.05, 0.10, 0.15])
        assert "12 of 120 verdicts ungraded (10.0%)" in two.get_title() and "2 of 3 steps" in two.get_title()
    finally:
        plt.close(fig)
    fig = training_figure({"stage 2": []})  # a stage with no logged step: still integer ticks, and says so
    try:
        fig.canvas.draw()
        assert all(float(t).is_integer() for t in fig.axes[0].get_xticks())
        assert "no steps logged" in [t.get_text() for t in fig.axes[0].texts]
    finally:
        plt.close(fig)


def _bar_heights(fig) -> list[list[float]]:
    return [[p.get_height() for p in c.patches] for c in fig.axes[0].containers if hasattr(c, "patches")]


def test_heldout_draws_one_bar_when_levels_coincide_and_two_distinct_bars_otherwise():
    import matplotlib.pyplot as plt

    same = {"base": _model(0.5, 0.5), "stage1": _model(0.7, 0.7)}
    fig = heldout_figure(same)
    try:
        assert _bar_heights(fig) == [[0.5, 0.7]]
        assert fig.axes[0].get_legend().get_texts()[0].get_text().startswith("prompt-level = instruction-level")
    finally:
        plt.close(fig)
    fig = heldout_figure({"base": _model(0.5, 0.6), "stage1": _model(0.7, 0.8)})
    try:
        assert _bar_heights(fig) == [[0.5, 0.7], [0.6, 0.8]]
        assert len(fig.axes[0].get_legend().get_texts()) == 2
        from matplotlib.colors import to_hex

        from rubricrl.report.style import BASE, OURS

        for c in [c for c in fig.axes[0].containers if hasattr(c, "patches")]:  # trained = "ours", as in the report
            assert [to_hex(p.get_facecolor()) for p in c.patches] == [BASE, OURS]
    finally:
        plt.close(fig)


FILTER = {
    "candidates": 40,
    "kept": 17,
    "kept_frac": 0.425,
    "threshold_low": 0.0,
    "threshold_high": 1.0,
    "dropped": {"below_band": 0, "above_band": 3, "zero_variance": 20, "over_cap": 0},
    "mean_reward_all": 0.41,
    "mean_reward_kept": 0.52,
}
EVAL = {
    "decoding": {"temperature": 0.7, "top_p": 0.95, "max_new_tokens": 96, "samples": 2},
    "stage1_heldout": {
        "base": _model(0.5, 0.5),
        "stage1": _model(0.7, 0.7),
        "stage2": _model(0.65, 0.65),
        "stage1_minus_base": {
            "prompt_level": 0.2,
            "prompt_level_ci95": [0.05, 0.3],
            "reward": 0.1,
            "reward_ci95": [0.0, 0.2],
            "n_prompts": 60,
        },
    },
}


def test_report_text_states_the_configured_band_and_no_dict_reprs():
    hack = {"rollouts": 80, "top": 20, "reward_cutoff": 0.8, "top_counts": {"repetition": 3, "sycophancy": 1}}
    md = render("r", "tiny", {"stage1_train": 40}, FILTER, {}, hack, {}, EVAL, band=(0.1, 0.9))
    assert "central quantile band [0.1, 0.9]" in md  # what the filter histogram's title says
    assert "mean reward from 0.000 to 1.000" in md and "0.000..1.000" not in md
    assert "Dropped: below band 0, above band 3, zero variance 20, over cap 0." in md
    assert "Decoding: temperature 0.7, top_p 0.95, max_new_tokens 96, samples 2." in md
    assert "{" not in md and "}" not in md


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def test_pipeline_eval_and_report_reach_wandb_with_job_types_and_stable_ids(offline, tmp_path):
    from rubricrl.config import compose_experiment

    cfg = compose_experiment("rubicon", [f"run.root={tmp_path}", "run.name=w"])
    run_dir = cfg.run.dir
    _write(run_dir / "data" / "metrics.json", {"stage1_train": 40})
    _write(run_dir / "filter" / "filter_stats.json", FILTER)
    _write(run_dir / "stage1_rl" / "metrics.json", {"global_step": 3, "reward_health": {"steps": HEALTH}})
    (run_dir / "stage1_rl" / "log_history.jsonl").write_text(
        "\n".join(json.dumps({"step": s, "reward": 0.3}) for s in (1, 2, 3)), encoding="utf-8"
    )
    _write(run_dir / "eval" / "eval.json", EVAL)
    ctx = SimpleNamespace(cfg=cfg, run_dir=run_dir, dir=run_dir / "report")
    ctx.dir.mkdir()
    out = write_report(ctx)
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert f"central quantile band [{cfg.section('rubicon').filter.band[0]:g}, " in md and "{" not in md
    records = {}
    for job in ("eval", "report"):
        folder = Path(out["wandb"][job])
        assert folder.parent == run_dir / "wandb" and folder.name.startswith("offline-run-")
        rec = wandb_run_record(folder)
        assert rec.job_type == job and rec.run_group == "w" and rec.display_name == f"w-{job}"
        records[job] = rec.run_id
    evals = list((Path(out["wandb"]["eval"]) / "files" / "media" / "table").rglob("*.table.json"))
    table = json.loads(next(p for p in evals if "stage1_heldout" in str(p)).read_text())
    assert [r[0] for r in table["data"]] == ["base", "stage1", "stage2"]
    assert list((Path(out["wandb"]["report"]) / "files" / "media" / "images").rglob("*.png"))
    # The report stage run again (--force): the same W&B runs, one local folder each.
    again = write_report(ctx)
    for job in ("eval", "report"):
        assert wandb_run_record(Path(again["wandb"][job])).run_id == records[job]
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 2


def test_training_runs_have_job_type_train(offline, tmp_path):
    import wandb

    from rubricrl.config import compose_experiment
    from rubricrl.train.wandb_log import configure_wandb

    cfg = compose_experiment("rubicon", [f"run.root={tmp_path}", "run.name=w"])
    assert configure_wandb(cfg, tmp_path / "w", "w-stage1_rl") == ["wandb"]
    wandb.finish()
    (folder,) = (tmp_path / "w" / "wandb").glob("offline-run-*")
    assert wandb_run_record(folder).job_type == "train"
