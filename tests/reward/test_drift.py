"""The gold-judge drift monitor's rules (rubricrl.reward.drift) and its file (rubricrl.reward.drift_file)."""

from __future__ import annotations

import json

import pytest

from rubricrl.errors import UserError
from rubricrl.reward.drift import (
    DriftMonitor,
    DriftMonitorError,
    DriftThresholds,
    is_check_step,
    monitor_metrics,
    sample_keys,
    verdict,
)
from rubricrl.reward.drift_file import append_check, read_checks, restore_monitor, summary_from_file


def _observe(
    m: DriftMonitor, step: int, train: float, gold: float | None, n: int = 4, verdicts: int = 8, ungraded: int = 0
):
    return m.observe(step, [train] * n, None if gold is None else [gold] * n, verdicts, ungraded, prompts=1)


def test_check_steps_are_the_first_every_nth_and_the_last():
    assert [s for s in range(1, 21) if is_check_step(s, 10, 20)] == [1, 10, 20]
    assert [s for s in range(1, 8) if is_check_step(s, 3, 7)] == [1, 3, 6, 7]
    assert [s for s in range(1, 3) if is_check_step(s, 10, 2)] == [1, 2]
    with pytest.raises(ValueError):
        is_check_step(1, 0)


def test_sample_is_a_fixed_seeded_order_of_prompt_ids():
    keys = ["p3", "p1", "p2", "p1", "p3", "p0"]
    first = sample_keys(keys, 2, seed=0)
    assert len(first) == 2 and len(set(first)) == 2 and set(first) <= set(keys)
    assert sample_keys(list(reversed(keys)), 2, seed=0) == first  # order of arrival does not matter
    # a prompt that ranks first overall is chosen in any step that has it
    top = sample_keys(["p0", "p1", "p2", "p3"], 1, seed=0)[0]
    assert all(sample_keys([other, top], 1, seed=0) == [top] for other in ("p0", "p1", "p2", "p3"))
    assert sample_keys(["p0", "p1", "p2", "p3"], 10, seed=0) == sample_keys(["p3", "p2", "p1", "p0"], 10, seed=0)
    assert any(
        sample_keys([f"p{i}" for i in range(20)], 3, seed=s) != sample_keys([f"p{i}" for i in range(20)], 3, seed=0)
        for s in (1, 2, 3)
    )


def test_gap_widening_and_trend_against_the_first_check():
    m = DriftMonitor(DriftThresholds(max_gap=0.15, window=2))
    c1 = _observe(m, 1, 0.50, 0.40)  # a constant disagreement of 0.10 is the baseline, not drift
    assert c1.gap == pytest.approx(0.10) and c1.widening is None and c1.trend is None and c1.warning is None
    c2 = _observe(m, 10, 0.60, 0.50)
    assert c2.gap == pytest.approx(0.10) and c2.widening == pytest.approx(0.0) and c2.trend == pytest.approx(0.0)
    c3 = _observe(m, 20, 0.80, 0.30)  # training judge up, gold judge down
    assert c3.gap == pytest.approx(0.50)
    assert c3.widening == pytest.approx((0.10 + 0.50) / 2 - 0.10)  # mean of the last 2 checks after the first
    assert c3.trend == pytest.approx(0.04)  # slope of the gap over steps 10 -> 20
    assert c3.warning and "widened by +0.200 since step 1" in c3.warning and c3.action == "warn"
    s = m.summary()
    assert s["checks"] == 3 and s["valid_checks"] == 3 and s["first_gap"] == pytest.approx(0.1)
    assert s["last_gap"] == pytest.approx(0.5) and s["warnings"] == [c3.warning] and s["stopped"] is None
    assert "3 valid checks" in s["verdict"] and "1 warning" in s["verdict"]


def test_warn_keeps_going_and_stop_raises_a_user_error_after_recording():
    warn = DriftMonitor(DriftThresholds(max_gap=0.1, on_gap="warn", window=1))
    _observe(warn, 1, 0.5, 0.5)
    c = _observe(warn, 2, 0.9, 0.3)
    assert c.warning and c.action == "warn" and "monitor.max_gap=0.1" in c.warning

    stop = DriftMonitor(
        DriftThresholds(max_gap=0.1, on_gap="stop", window=1),
        judge="gold-model at http://g",
        train_judge="train-model at http://t",
        stage="stage2_rl",
    )
    _observe(stop, 1, 0.5, 0.5)
    with pytest.raises(DriftMonitorError) as e:
        _observe(stop, 2, 0.9, 0.3)
    assert isinstance(e.value, UserError) and e.value.exit_code == 2
    msg = str(e.value)
    assert msg.startswith("stage2_rl: stopped by the gold-judge drift monitor (monitor.on_gap=stop)")
    assert "gold judge: gold-model at http://g" in msg and "training judge: train-model at http://t" in msg
    assert "monitor.max_gap" in msg and "--stage stage2_rl --force" in msg
    assert 2 in stop.checks and stop.checks[2].action == "stop"  # recorded before raising
    assert e.value.summary["stopped"] == stop.checks[2].warning


def test_a_mostly_ungraded_gold_check_gives_no_gold_reward_and_never_enters_the_gap():
    m = DriftMonitor(DriftThresholds(max_gap=0.05, window=1, max_ungraded_share=0.5))
    _observe(m, 1, 0.5, 0.5)
    bad = _observe(m, 2, 0.9, 0.0, verdicts=8, ungraded=6)  # 75% ungraded: its 0.0 must not count
    assert bad.gold_judge_reward is None and bad.gap is None and bad.warning is None
    assert "6 of 8 verdicts ungraded (75%" in bad.skipped
    metrics = monitor_metrics(bad)
    assert "monitor/gold_judge_reward" not in metrics and "monitor/gap" not in metrics
    assert metrics["monitor/skipped"] == 1.0 and metrics["monitor/gold_ungraded_share"] == 0.75
    s = m.summary()
    assert s["checks"] == 2 and s["valid_checks"] == 1 and s["skipped_checks"] == 1
    assert "skipped" in s["verdict"] and "no trend yet" in s["verdict"]
    none = DriftMonitor()
    _observe(none, 1, 0.5, 0.1, verdicts=4, ungraded=4)
    assert "none with a gold reward" in none.summary()["verdict"]
    assert _observe(DriftMonitor(), 1, 0.5, None).skipped == "the gold judge returned no rewards"


def test_metrics_keys_of_a_full_check():
    m = DriftMonitor(DriftThresholds(window=3))
    _observe(m, 1, 0.5, 0.4)
    keys = set(monitor_metrics(_observe(m, 2, 0.6, 0.4)))
    assert keys == {
        "monitor/train_judge_reward",
        "monitor/gold_judge_reward",
        "monitor/gap",
        "monitor/gap_widening",
        "monitor/gap_trend",
        "monitor/n",
        "monitor/gold_ungraded_share",
        "monitor/skipped",
        "monitor/warning",
    }


def test_bad_counts_are_refused():
    m = DriftMonitor()
    with pytest.raises(ValueError):
        m.observe(1, [0.5], [0.5], 2, 3)
    with pytest.raises(ValueError):
        m.observe(1, [0.5, 0.5], [0.5], 2, 0)
    with pytest.raises(ValueError):
        DriftThresholds(max_gap=0)
    with pytest.raises(ValueError):
        DriftThresholds(on_gap="explode")  # type: ignore[arg-type]


def test_file_append_resume_cut_and_summary(tmp_path):
    path = tmp_path / "monitor.jsonl"
    m = DriftMonitor(DriftThresholds(max_gap=0.1, window=1))
    for step, (t, g) in zip((1, 10, 20), ((0.5, 0.5), (0.6, 0.5), (0.9, 0.4))):
        append_check(path, _observe(m, step, t, g))
    with path.open("a") as f:
        f.write('{"step": 30, "train_')  # a torn last line of a killed run
    assert [r["step"] for r in read_checks(path)] == [1, 10, 20]
    # the stage resumes from the checkpoint of step 10: the check of step 20 is that attempt's, redone now
    again = DriftMonitor(DriftThresholds(max_gap=0.1, window=1))
    kept, cut = restore_monitor(path, again, 10)
    assert (kept, cut) == (2, 1) and sorted(again.checks) == [1, 10]
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [1, 10]
    c = _observe(again, 20, 0.9, 0.4)
    assert c.widening == pytest.approx(0.5) and c.warning  # the restored baseline is used
    append_check(path, c)
    s = summary_from_file(path, stage="stage1_rl", judge="gold")
    assert s["checks"] == 3 and s["judge"] == "gold" and [r["step"] for r in s["rows"]] == [1, 10, 20]
    assert s["warnings"] == [c.warning]
    assert summary_from_file(tmp_path / "none.jsonl") is None
    assert restore_monitor(tmp_path / "none.jsonl", DriftMonitor(), 5) == (0, 0)


def test_verdict_without_checks():
    assert verdict({"checks": 0}) == "no check ran"
