"""The drift monitor in the reports and the hacking stage: the checks table, the plot, the verdict, W&B."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from replications.rubicon.hacking import mine, render_markdown
from rubricrl.report.drift import PLOT, drift_section, drift_wandb_table, plot_drift, stage_drift
from rubricrl.reward.drift import DriftMonitor, DriftThresholds
from rubricrl.reward.drift_file import append_check


def _checks(stage_dir: Path, skip_step: int | None = None) -> DriftMonitor:
    """A stage whose training reward rises while the gold reward falls; one check mostly ungraded."""
    m = DriftMonitor(
        DriftThresholds(max_gap=0.1, window=1),
        judge="gold at http://g/v1",
        train_judge="verifiers",
        stage=stage_dir.name,
    )
    for step, (t, g) in zip((1, 10, 20), ((0.4, 0.35), (0.6, 0.3), (0.8, 0.2))):
        ungraded = 7 if step == skip_step else 0
        append_check(stage_dir / "monitor.jsonl", m.observe(step, [t] * 4, [g] * 4, 8, ungraded, prompts=1))
    return m


def test_section_table_plot_and_wandb_rows(tmp_path):
    s1 = tmp_path / "stage1_rl"
    m = _checks(s1, skip_step=10)
    (s1 / "metrics.json").write_text(json.dumps({"drift_monitor": m.summary()}))
    drift = {"stage 1": stage_drift(s1), "stage 2": stage_drift(tmp_path / "stage2_rl")}
    assert drift["stage 2"] is None and [r["step"] for r in drift["stage 1"]["rows"]] == [1, 10, 20]
    md = "\n".join(drift_section(drift))
    assert "## Gold-judge drift monitor" in md and "gold judge gold at http://g/v1" in md
    assert "| 1 | 0.400 | 0.350 | +0.050 | - | - | 4 | 0/8 |" in md
    assert "| 10 | 0.600 | skipped | - | - | - | 4 | 7/8 |" in md  # mostly ungraded: no gold reward shown
    assert "| 20 | 0.800 | 0.200 | +0.600 | +0.550 |" in md and "- warning (warn): step 20" in md
    assert "{" not in md and "stage 2" not in md
    assert plot_drift(drift, tmp_path / PLOT) == tmp_path / PLOT and (tmp_path / PLOT).stat().st_size > 1000
    cols, rows = drift_wandb_table(drift)
    assert cols[:5] == ["stage", "step", "train_judge_reward", "gold_judge_reward", "gap"] and len(rows) == 3
    assert plot_drift({"stage 1": None}, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
    assert "Off in this run" in "\n".join(drift_section({"stage 1": None}))


def test_hacking_taxonomy_carries_the_stage_verdict(tmp_path):
    s1 = tmp_path / "stage1_rl"
    _checks(s1)
    tax = mine([{"prompt": "p", "completion": "fine answer", "reward": 1.0}], 0.5)
    md = render_markdown(tax, "defense-reward-hacking", drift=stage_drift(s1))
    assert "## Gold-judge drift during the stage" in md and "Verdict: 3 valid checks" in md
    assert "| 20 | 0.800 | 0.200 | +0.600 | +0.550 | 4 | 0/8 |" in md and "- warning: step 20" in md
    assert "monitor was off" in render_markdown(tax, "d", drift=None)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith("WANDB_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HOME", str(tmp_path))
    yield
    import wandb

    if wandb.run is not None:
        wandb.finish()


def test_both_pipeline_reports_show_the_monitor_and_log_its_table_to_wandb(offline, tmp_path):
    from replications.rubicon.report import write_report as write_rubicon_report
    from replications.self_rewarding.report import write_report
    from rubricrl.config import compose_experiment

    cfg = compose_experiment("rubicon", [f"run.root={tmp_path}", "run.name=r"])
    run_dir = cfg.run.dir
    for stage in ("stage1_rl", "stage2_rl"):
        _checks(run_dir / stage)
    (run_dir / "report").mkdir(parents=True)
    out = write_rubicon_report(SimpleNamespace(cfg=cfg, run_dir=run_dir, dir=run_dir / "report"))
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "## Gold-judge drift monitor" in md and "**stage 1**" in md and "**stage 2**" in md
    assert f"![gold-judge drift]({PLOT})" in md and (run_dir / PLOT).is_file()
    assert out["drift_monitor"]["stage 1"]["checks"] == 3
    tables = list((Path(out["wandb"]["report"]) / "files" / "media" / "table").rglob("*.table.json"))
    table = json.loads(next(p for p in tables if "drift_monitor_checks" in str(p)).read_text())
    assert [r[1] for r in table["data"]] == [1, 10, 20, 1, 10, 20]

    sr = compose_experiment("self_rewarding", [f"run.root={tmp_path}", "run.name=s"])
    _checks(sr.run.dir / "train")
    (sr.run.dir / "report").mkdir(parents=True)
    out = write_report(SimpleNamespace(cfg=sr, run_dir=sr.run.dir, dir=sr.run.dir / "report"))
    md = (sr.run.dir / "report" / "report.md").read_text(encoding="utf-8")
    assert "### Gold-judge drift monitor" in md and "| 20 | 0.800 | 0.200 | +0.600 |" in md
    assert PLOT in out["plots"] and out["drift_monitor"]["checks"] == 3
