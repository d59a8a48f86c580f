"""The pipeline reports show where a training step's time goes (the TRL stages' ``timing`` metrics)."""

from __future__ import annotations

from replications.rubicon.report import render
from rubricrl.report.run_report import step_time_table

TIMING = {
    "timing/step_s": 4.0,
    "timing/generation_s": 2.0,
    "timing/reward_s": 1.5,
    "timing/train_s": 0.5,
    "timing/reward_share": 0.375,
    "timing/judge_queue_wait_s": 0.25,
    "timing/judge_compute_s": 3.0,
}


def test_rubicon_report_has_the_step_time_split_per_stage():
    s1 = {"global_step": 2, "train_seconds": 8.0, "timing": TIMING}
    s2 = {"global_step": 2, "train_seconds": 9.0}  # a stage run before timing existed: no row
    md = render("r", "tiny", {}, {}, s1, {}, s2, {})
    assert "| stage | step s | generation s | reward s | train s | reward share |" in md
    assert "| stage 1 | 4.00 | 2.00 | 1.50 | 0.50 | 37.5% | 0.25 | 3.00 |" in md
    assert "| stage 2 | 4.00" not in md


def test_no_table_without_timing():
    assert step_time_table({"stage 1": {"global_step": 1}}) == []
