"""Reward health: a stage whose rewards are mostly ungraded, or never vary, stops with a clear UserError."""

from __future__ import annotations

import json

import pytest

from rubricrl.errors import UserError
from rubricrl.reward.health import HealthThresholds, RewardHealth, RewardHealthError

JUDGE = "smollm2-135m-instruct at http://127.0.0.1:8000/v1"


def test_a_mostly_ungraded_step_stops_at_once_naming_judge_counters_threshold_and_fixes():
    h = RewardHealth(judge=JUDGE, stage="stage2_rl", group_size=4)
    h.observe_step(1, 40, 4, [0.1, 0.5, 0.2, 0.9], {"calls": 4, "graded": 36, "ungraded": 4, "latency_sum_s": 8.0})
    with pytest.raises(RewardHealthError) as e:
        h.observe_step(
            2,
            40,
            32,
            [0.0] * 4,
            {"calls": 8, "transport_errors": 8, "timeouts": 8, "retries": 4, "ungraded": 32, "latency_sum_s": 960.0},
        )
    assert isinstance(e.value, UserError) and e.value.exit_code == 2
    msg = str(e.value)
    assert "stage2_rl" in msg and JUDGE in msg
    assert "32 of 40 verdicts ungraded (80%)" in msg and "run.max_ungraded_share=0.5" in msg
    assert "transport_errors 8" in msg and "timeouts 8" in msg and "mean latency 80.67 s/call" in msg
    for fix in ("judge.timeout_s", "judge.concurrency", "faster judge", "run.max_ungraded_share"):
        assert fix in msg
    assert "no done marker" in msg and "--stage stage2_rl --force" in msg and len(msg.splitlines()) >= 4
    s = e.value.summary
    assert s["ok"] is False and s["ungraded"] == 36 and s["judge_stats"]["timeouts"] == 8
    json.dumps(s)  # JSON-ready


def test_at_the_limit_passes_and_a_relaxed_limit_never_stops():
    RewardHealth().observe_step(1, 10, 5, [0.0, 1.0])  # 50% is not above 0.5
    RewardHealth(HealthThresholds(max_ungraded_share=1.0)).observe_step(1, 10, 10, [0.0, 0.0])


def test_batches_of_one_step_are_merged_before_the_check():
    h = RewardHealth()
    h.observe_step(3, 10, 0, [0.0, 1.0])
    h.observe_step(3, 10, 10, [0.0, 0.0])  # 10 of 20 for the step: not above the limit
    with pytest.raises(RewardHealthError, match="step 3: 11 of 21"):
        h.observe_step(3, 1, 1, [0.0])


def test_no_reward_variance_in_any_step_fails_at_finish():
    h = RewardHealth(judge="programmatic verifiers", stage="stage1_rl", group_size=2)
    for step in (1, 2, 3):
        h.observe_step(step, 8, 0, [0.0, 0.0, 1.0, 1.0])  # each group constant: zero advantage everywhere
    with pytest.raises(RewardHealthError) as e:
        h.finish()
    msg = str(e.value)
    assert "0 of 3 steps had rewards that differ (within a group)" in msg
    assert "run.min_steps_with_reward_variance=1" in msg and "programmatic verifiers" in msg


def test_one_varying_step_is_enough_by_default_and_zero_turns_the_check_off():
    h = RewardHealth(group_size=2)
    h.observe_step(1, 4, 0, [0.0, 0.0, 1.0, 1.0])
    h.observe_step(2, 4, 0, [0.0, 0.5, 1.0, 1.0])
    s = h.finish()
    assert s["ok"] and s["steps_with_reward_variance"] == 1 and s["steps_observed"] == 2
    strict = RewardHealth(HealthThresholds(min_steps_with_reward_variance=2), group_size=2)
    strict.restore(s["steps"])
    with pytest.raises(RewardHealthError, match="1 of 2 steps"):
        strict.finish()
    RewardHealth(HealthThresholds(min_steps_with_reward_variance=0)).finish()


def test_without_groups_variance_is_across_the_step():
    h = RewardHealth()
    h.observe_step(1, 2, 0, [0.0, 1.0])
    assert h.finish()["steps_with_reward_variance"] == 1
    h = RewardHealth(group_size=4)  # 3 rewards do not split into groups of 4: across the step
    h.observe_step(1, 3, 0, [0.2, 0.2, 0.3])
    assert h.finish()["steps"][0]["group_std"] is None


def test_restore_takes_back_earlier_steps_after_a_resume():
    h = RewardHealth(group_size=2)
    h.observe_step(1, 4, 1, [0.0, 1.0], {"calls": 2, "ungraded": 1})
    rows = json.loads(json.dumps(h.summary()["steps"]))
    again = RewardHealth(group_size=2)
    again.restore(rows)
    again.observe_step(2, 4, 0, [0.5, 0.5], {"calls": 2})
    s = again.finish()
    assert s["steps_observed"] == 2 and s["ungraded"] == 1 and s["judge_stats"]["calls"] == 4


@pytest.mark.parametrize("kw", [{"max_ungraded_share": 1.5}, {"min_steps_with_reward_variance": -1}])
def test_bad_thresholds(kw):
    with pytest.raises(ValueError):
        HealthThresholds(**kw)


def test_inconsistent_counts_are_a_caller_bug():
    with pytest.raises(ValueError, match="n_ungraded"):
        RewardHealth().observe_step(1, 2, 3, [0.0])
