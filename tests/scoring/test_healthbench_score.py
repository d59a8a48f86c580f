"""HealthBench scoring: the reference formulas, per-tag rules, clipping, bootstrap and ungraded policies."""

from __future__ import annotations

import numpy as np
import pytest

from rubricrl.errors import UserError
from rubricrl.scoring.graded import GradedRecord
from rubricrl.scoring.healthbench import clipped_stats, score_records
from tests.scoring.helpers import record, three_examples

ACC, COMP, EX = "axis:accuracy", "axis:completeness", "level:example"


def test_worked_check_from_the_paper():
    # met 7 + 10 - 6 over positive points 7 + 10 + 5 = 22 -> 11 / 22 = 0.5
    r = record("w", [(7, [ACC], True), (10, [ACC], True), (5, [ACC], False), (-6, [ACC], True), (-3, [ACC], False)])
    rep = score_records([r], n_bootstrap=10)
    assert rep.metrics["overall_score"] == pytest.approx(0.5)


def test_three_examples_every_metric():
    rep = score_records([GradedRecord(d) for d in three_examples()], n_bootstrap=50, seed=1)
    m = rep.metrics
    # per example: A = (5-2)/10 = 0.3, B = (10-5)/10 = 0.5, C = (4+4-10)/8 = -0.25
    expected = {
        "overall_score": ((0.3 + 0.5 - 0.25) / 3, 3),
        "theme:t1": ((0.3 + 0.5) / 2, 2),
        "theme:t2": (0.0, 1),  # -0.25 clipped
        "physician_agreed_category:x": (0.3, 1),
        # accuracy: A (5-2)/5 = 0.6, B 10/10 = 1, C (4-10)/4 = -1.5
        "axis:accuracy": ((0.6 + 1.0 - 1.5) / 3, 3),
        # completeness: A 0/5 = 0, B has only a negative item (skipped), C 4/4 = 1
        "axis:completeness": (0.5, 2),
        # level:example: A 0.3, B only a negative item (skipped), C -0.25
        "level:example": ((0.3 - 0.25) / 2, 2),
        "level:cluster": (1.0, 1),
        "cluster:c1": (1.0, 1),
    }
    names = {k for k in m if ":n_samples" not in k and ":bootstrap_std" not in k}
    assert names == set(expected)
    for name, (value, n) in expected.items():
        assert m[name] == pytest.approx(value), name
        assert m[f"{name}:n_samples"] == n, name
        assert f"{name}:bootstrap_std" in m
    assert m["theme:t2:bootstrap_std"] == 0.0  # one sample
    assert rep.n_examples == 3 and rep.n_ungraded == 0 and rep.n_unscorable == 0
    out = rep.to_json()
    assert out["score"] == m["overall_score"]
    # simple-evals' JSON also carries the overall's sample count and bootstrap std under "score".
    assert out["score:n_samples"] == m["overall_score:n_samples"] == 3
    assert out["score:bootstrap_std"] == m["overall_score:bootstrap_std"]
    assert list(m)[0] == "overall_score"


def test_mean_is_clipped_not_the_examples():
    # 1.0 and -1.0 average to 0; clipping per example first would give 0.5
    rs = [record("a", [(2, [ACC], True)]), record("b", [(2, [ACC], False), (-2, [ACC], True)])]
    assert score_records(rs, n_bootstrap=0).metrics["overall_score"] == pytest.approx(0.0)
    # a single negative example: its mean (-1.0) is clipped to 0
    rs = [record("c", [(2, [ACC], False), (-4, [ACC], True)])]
    assert score_records(rs, n_bootstrap=0).metrics["overall_score"] == 0.0


def test_bootstrap_std_matches_direct_numpy_with_same_seed():
    values = [0.3, 0.5, -0.25, 0.9, 1.2, 0.1]
    mean, n, std = clipped_stats(values, n_bootstrap=1000, seed=7)
    rng = np.random.default_rng(7)
    arr = np.array(values)
    direct = [np.clip(arr[rng.integers(0, len(arr), len(arr))].mean(), 0, 1) for _ in range(1000)]
    assert n == 6
    assert mean == pytest.approx(np.clip(arr.mean(), 0, 1))
    assert std == pytest.approx(float(np.std(direct)))
    assert std > 0
    assert clipped_stats(values, 1000, seed=8)[2] != std  # the seed matters
    assert clipped_stats(values, 1000, seed=7)[2] == std  # and fixes the result


def test_bootstrap_std_reported_per_metric_is_the_seeded_one():
    recs = [GradedRecord(d) for d in three_examples()]
    rep = score_records(recs, n_bootstrap=1000, seed=3)
    _, _, std = clipped_stats([0.3, 0.5, -0.25], 1000, 3)
    assert rep.metrics["overall_score:bootstrap_std"] == pytest.approx(std)


def _one_ungraded():
    return [record("u", [(5, [ACC], True), (5, [COMP], None), (-2, [ACC], True)], ["theme:t"])]


def test_ungraded_exclude_drops_item_from_both_sums():
    rep = score_records(_one_ungraded(), ungraded="exclude", n_bootstrap=0)
    assert rep.metrics["overall_score"] == pytest.approx((5 - 2) / 5)
    assert "axis:completeness" not in rep.metrics  # its only positive item is ungraded
    assert rep.n_ungraded == 1


def test_ungraded_not_met_counts_as_not_met():
    rep = score_records(_one_ungraded(), ungraded="not_met", n_bootstrap=0)
    assert rep.metrics["overall_score"] == pytest.approx((5 - 2) / 10)
    assert rep.metrics["axis:completeness"] == 0.0
    assert rep.n_ungraded == 1


def test_ungraded_fail_refuses_and_says_how_many():
    with pytest.raises(UserError, match="1 ungraded verdicts in 1 of 1 examples"):
        score_records(_one_ungraded(), ungraded="fail")


def test_example_with_all_positive_items_ungraded_is_unscorable_under_exclude():
    recs = _one_ungraded() + [record("v", [(5, [ACC], None), (-2, [ACC], True)])]
    rep = score_records(recs, n_bootstrap=0)
    assert rep.n_examples == 2 and rep.n_scored == 1 and rep.n_unscorable == 1
    assert rep.metrics["overall_score:n_samples"] == 1


def test_unknown_policy_is_a_user_error():
    with pytest.raises(UserError, match="unknown ungraded policy"):
        score_records(_one_ungraded(), ungraded="zero")  # type: ignore[arg-type]
