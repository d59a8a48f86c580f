"""The self-rewarding pipeline end to end at a shortened tiny scale, through the real CLI.

Real parts: SmolLM2-135M-Instruct policy, TRL's GRPOTrainer, the live-policy grader on the trainer's
model, the frozen-SmolLM2 teacher and fixed evaluation judge, HealthBench records from the offline copy.
Shortened: 1 GRPO step of 1 prompt x 4 samples, 2 train / 2 held-out examples, 16-token answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1500,
        env={**__import__("os").environ, "WANDB_MODE": "disabled"},
    )


def test_shortened_pipeline_runs_every_stage_and_skips_them_when_rerun(tmp_path):
    overrides = [
        f"run.root={tmp_path}",
        "run.name=sr-ci",
        "grpo.max_steps=1",
        "grpo.per_device_train_batch_size=4",
        "grpo.max_completion_length=16",
        "grpo.save_steps=1",
        "self_rewarding.data.max_train=2",
        "self_rewarding.data.max_heldout=2",
        "self_rewarding.data.train_max_criteria=4",
        "self_rewarding.data.heldout_max_criteria=4",
        "self_rewarding.teacher.fraction=1.0",
        "self_rewarding.eval.max_new_tokens=16",
        "self_rewarding.eval.n_bootstrap=100",
        "run.min_steps_with_reward_variance=0",  # one step may see no reward variance by chance (plumbing test)
    ]
    first = _cli("replicate", "self_rewarding", *overrides)
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "sr-ci"
    for stage in ("data", "train", "eval", "report"):
        assert (run / stage / "DONE").is_file(), stage
    train = json.loads((run / "train" / "metrics.json").read_text())
    assert train["global_step"] == 1
    assert train["self_grader"]["graded"] > 0 and train["self_grader"]["ungraded"] == 0
    assert train["self_vs_teacher"]["n"] > 0 and 0 <= train["self_vs_teacher"]["agreement"] <= 1
    rollouts = [json.loads(x) for x in (run / "train" / "rollouts.jsonl").read_text().splitlines()]
    assert len(rollouts) == 4 and all(r["rubric_id"] for r in rollouts)
    ev = json.loads((run / "eval" / "metrics.json").read_text())
    assert ev["judge"]["kind"] == "constrained"
    for label in ("before", "after"):
        assert ev[label]["overall_score:n_samples"] == ev["n_heldout"] == 2
        graded = [json.loads(x) for x in (run / "eval" / f"graded_{label}.jsonl").read_text().splitlines()]
        assert all(len(g["grades"]) == len(g["rubrics"]) for g in graded)
    report = (run / "report" / "report.md").read_text()
    assert "not a replication" in report and "before" in report and "Cohen's kappa" in report
    check = subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", "check-expected", str(run)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout
    again = _cli("replicate", "self_rewarding", *overrides)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("done already, skipped") == 4


def test_bad_override_is_a_clear_error_not_a_traceback(tmp_path):
    bad = _cli("replicate", "self_rewarding", f"run.root={tmp_path}", "self_rewarding.teacher.fraction=2")
    assert bad.returncode == 2
    assert "self_rewarding.teacher.fraction" in bad.stderr and "Traceback" not in bad.stderr
