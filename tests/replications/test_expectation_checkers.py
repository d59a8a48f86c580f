"""The expectation checkers FAIL (exit 1), not warn, on a run whose training stage had no reward signal.

The run folders are the shape the issue saw: every stage done, every training step ``reward 0``,
``reward_std 0``, ``frac_reward_zero_std 1``, the judge's verdicts mostly ungraded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
RUN = {
    "run": {"scale": "tiny", "max_ungraded_share": 0.5, "min_steps_with_reward_variance": 1},
    "grpo": {"max_steps": 2, "per_device_train_batch_size": 4},
    "rubicon": {"stage2": {"grpo": {"max_steps": 2}}},
}


def _stage(run: Path, name: str, metrics: dict, history: list[dict] | None = None) -> None:
    d = run / name
    d.mkdir(parents=True)
    (d / "config.yaml").write_text("paper: x\n")
    (d / "DONE").write_text("{}")
    (d / "metrics.json").write_text(json.dumps(metrics))
    if history is not None:
        (d / "log_history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))


def _flat(steps: int) -> list[dict]:
    return [
        {"step": s, "reward": 0.0, "reward_std": 0.0, "frac_reward_zero_std": 1.0, "grad_norm": 0.0}
        for s in range(1, steps + 1)
    ]


def _check(run: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "rubricrl.cli", "check-expected", str(run), *extra]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_rubicon_checker_fails_a_stage_2_that_learned_nothing(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({**RUN, "paper": "rubicon"}))
    varied = [{"step": s, "reward": 0.5, "reward_std": 0.2, "frac_reward_zero_std": 0.5} for s in (1, 2)]
    _stage(run, "data", {"stage1_heldout": 30})
    _stage(run, "filter", {"kept": 5, "candidates": 10})
    _stage(run, "stage1_rl", {"global_step": 2}, varied)
    _stage(run, "hacking", {"rollouts": 8})
    _stage(
        run, "stage2_rl", {"global_step": 2, "judge": {"graded": 16, "ungraded": 64, "transport_errors": 16}}, _flat(2)
    )
    _stage(run, "eval", {})
    _stage(run, "report", {})
    (run / "eval" / "eval.json").write_text(
        json.dumps(
            {
                "stage1_heldout": {
                    "base": {"n": 60},
                    "stage1_minus_base": {"reward": 0.1, "reward_ci95": [0.01, 0.2], "prompt_level_ci95": [0.0, 1.0]},
                },
                "stage2_heldout": {"judge": {"graded": 150, "ungraded": 3}},
            }
        )
    )
    r = _check(run)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL stage 2 had a reward signal" in r.stdout
    assert "FAIL the stage-2 judge graded most training verdicts" in r.stdout
    assert "ok   stage 1 had a reward signal" in r.stdout and "; 2 failed" in r.stdout


def test_self_rewarding_checker_fails_a_train_stage_without_reward_variance(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({**RUN, "paper": "self_rewarding"}))
    _stage(run, "train", {"global_step": 4, "self_grader": {"graded": 100, "ungraded": 0}}, _flat(4))
    r = _check(run)
    assert r.returncode == 1
    assert "FAIL training had a reward signal" in r.stdout
    assert "ok   the self-grader graded most training verdicts" in r.stdout


def test_every_replication_ships_expectations_in_the_one_format():
    from rubricrl.report.expectations import SCALES, load_expectations

    files = sorted(REPO.glob("replications/*/expected.yaml"))
    assert len(files) >= 2
    for f in files:
        sets = load_expectations(f)
        assert set(sets) == set(SCALES), f
        assert all(e.name and e.expr for es in sets.values() for e in es)


def test_a_malformed_expectation_is_a_clear_error_with_file_and_line(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({**RUN, "paper": "rubicon"}))
    bad = tmp_path / "expected.yaml"
    bad.write_text("tiny:\n  - name: broken\n    expr: m['train'][\n")
    r = _check(run, "--expected", str(bad))
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{bad}:3:" in r.stderr and "not a Python expression" in r.stderr and "Traceback" not in r.stderr
    r = _check(tmp_path / "nowhere")
    assert r.returncode == 2 and "not a run folder" in r.stderr


def test_warn_level_reports_without_failing(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({**RUN, "paper": "rubicon"}))
    _stage(run, "train", {"global_step": 3})
    spec = tmp_path / "expected.yaml"
    spec.write_text(
        "tiny:\n"
        '  - {name: steps, expr: \'m["train"]["global_step"] == 3\'}\n'
        '  - {name: a wish, expr: \'m["train"]["global_step"] > 10\', level: warn}\n'
        '  - {name: a file it wrote, expr: \'out("train", "metrics.json")["global_step"] == 3 and done["train"]\'}\n'
    )
    r = _check(run, "--expected", str(spec))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok   steps" in r.stdout and "warn a wish" in r.stdout and "ok   a file it wrote" in r.stdout
