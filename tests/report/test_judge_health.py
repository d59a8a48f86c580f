"""Judge health in the reports: a markdown table per stage, and a warning on a stage that learned nothing."""

from __future__ import annotations

import json

from rubricrl.report.judge_health import from_judge_stats, health_table, stage_health
from rubricrl.reward.health import RewardHealth


def _seen_stage2(d):
    """What the issue saw: the judge timed out, every step reward 0 / std 0, and the stage still finished."""
    d.mkdir(parents=True)
    (d / "log_history.jsonl").write_text(
        "".join(
            json.dumps({"step": s, "reward": 0.0, "reward_std": 0.0, "frac_reward_zero_std": 1.0, "grad_norm": 0.0})
            + "\n"
            for s in (1, 2)
        )
    )
    (d / "metrics.json").write_text(
        json.dumps(
            {
                "global_step": 2,
                "judge": {
                    "calls": 32,
                    "graded": 16,
                    "ungraded": 64,
                    "transport_errors": 16,
                    "retries": 16,
                    "latency_sum_s": 1920.0,
                    "mean_latency_s": 60.0,
                },
            }
        )
    )


def test_an_old_run_is_read_from_its_log_and_flagged(tmp_path):
    _seen_stage2(tmp_path / "stage2_rl")
    h = stage_health(tmp_path / "stage2_rl")
    assert h["source"] == "log_history.jsonl" and h["steps_observed"] == 2 and h["steps_with_reward_variance"] == 0
    assert h["ungraded"] == 64 and h["ungraded_share"] == 0.8
    md = "\n".join(health_table({"stage 2 (train)": h}))
    assert "| stage 2 (train) | 2 (0) | 80 | 64 | 80.0% | 16 | n/a | 16 | n/a | 60.00 |" in md
    assert "Warning: stage 2 (train): 64 of 80 verdicts (80%) were ungraded" in md
    assert "Warning: stage 2 (train): no step's rewards varied" in md
    assert "{" not in md  # no raw dict


def test_a_recorded_summary_wins_and_a_healthy_stage_has_no_banner(tmp_path):
    h = RewardHealth(group_size=2)
    h.observe_step(1, 10, 1, [0.0, 1.0], {"calls": 5, "timeouts": 1, "transport_errors": 1, "latency_sum_s": 2.5})
    d = tmp_path / "stage1_rl"
    d.mkdir()
    summary = {k: v for k, v in h.summary().items() if k != "steps"}
    (d / "metrics.json").write_text(json.dumps({"reward_health": summary}))
    row = stage_health(d)
    assert row["source"] == "metrics.json" and row["ok"] is True
    md = health_table({"stage 1": row, "missing": stage_health(tmp_path / "nope")})
    assert not any(line.startswith(">") for line in md)
    assert "| stage 1 | 1 (1) | 10 | 1 | 10.0% | 1 | 1 | n/a | n/a | 0.50 |" in md and "missing" not in "\n".join(md)


def test_a_failed_stage_is_read_from_reward_health_json(tmp_path):
    d = tmp_path / "stage2_rl"
    d.mkdir()
    (d / "reward_health.json").write_text(
        json.dumps(
            {
                "ok": False,
                "error": "step 1: 8 of 8 verdicts ungraded (100%), above run.max_ungraded_share=0.5",
                "steps_observed": 1,
                "steps_with_reward_variance": 0,
                "verdicts": 8,
                "ungraded": 8,
                "ungraded_share": 1.0,
                "judge_stats": {"timeouts": 8},
                "thresholds": {"max_ungraded_share": 0.5},
                "steps": [{"step": 1}],
            }
        )
    )
    md = "\n".join(health_table({"stage 2": stage_health(d)}))
    assert "stopped on reward health:** step 1: 8 of 8" in md


def test_eval_judge_counters_become_a_row():
    row = from_judge_stats(
        {
            "graded": 150,
            "ungraded": 3,
            "calls": 40,
            "transport_errors": 0,
            "timeouts": 0,
            "retries": 0,
            "parse_failures": 3,
            "mean_latency_s": 4.0,
        }
    )
    assert row["verdicts"] == 153 and health_table({"eval": row})[-1].endswith("| 0 | 0 | 0 | 3 | 4.00 |")


def test_rubicon_report_shows_the_table_instead_of_the_raw_judge_dict(tmp_path):
    from replications.rubicon.report import render

    _seen_stage2(tmp_path / "stage2_rl")
    judge = {
        "calls": 12,
        "graded": 20,
        "ungraded": 40,
        "transport_errors": 12,
        "timeouts": 12,
        "retries": 6,
        "mean_latency_s": 100.0,
    }
    s2h = {
        "judge": judge,
        "base": {"n": 3, "mean_reward": 0.0, "mean_task_reward": 0.0, "veto_rate": 0.0, "ungraded": 40},
    }
    md = render(
        "r",
        "tiny",
        {},
        {},
        {},
        {},
        {},
        {"stage2_heldout": s2h},
        {"stage 2 (train)": stage_health(tmp_path / "stage2_rl")},
    )
    assert "## Judge and reward health" in md and "'calls'" not in md
    assert "Warning: held-out eval (stage-2 judge): 40 of 60 verdicts (67%) were ungraded" in md
    assert "| held-out eval (stage-2 judge) | n/a | 60 | 40 | 66.7% | 12 | 12 | 6 | n/a | 100.00 |" in md
