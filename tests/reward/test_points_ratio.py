"""points_ratio (HealthBench per-example score) and weighted_mean: hand-computed values and properties."""

from __future__ import annotations

import numpy as np
import pytest

from rubricrl.judge.interfaces import Verdict
from rubricrl.reward import aggregate, get_aggregator
from rubricrl.rubrics.schema import AggregationSpec, Criterion, Tier

TIERS = (Tier(score=1), Tier(score=2), Tier(score=3), Tier(score=4), Tier(score=5))


def pts(*points: float) -> list[Criterion]:
    return [Criterion(id=f"c{i}", text=f"item {i}", points=p) for i, p in enumerate(points)]


def verdicts(*met: bool | None) -> list[Verdict]:
    return [Verdict(criterion_id=f"c{i}", met=m) for i, m in enumerate(met)]


def run(criteria, vs, name="points_ratio", **params):
    return aggregate(criteria, vs, AggregationSpec(name=name, params=params))


# ---------------------------------------------------------------- points_ratio


def test_healthbench_worked_check():
    # met points 7 + 10 - 6 over positive points 7 + 10 + 5 = 22 -> 0.5
    crit = pts(7, 10, 5, -6, -3)
    r = run(crit, verdicts(True, True, False, True, False), name="healthbench")
    assert r.reward == pytest.approx(0.5)
    assert r.components == {"earned": 11.0, "possible": 22.0}
    assert r.per_criterion == {"c0": 1.0, "c1": 1.0, "c2": 0.0, "c3": 1.0, "c4": 0.0}


def test_points_ratio_not_clipped_per_sample():
    r = run(pts(5, -10), verdicts(False, True))
    assert r.reward == pytest.approx(-2.0)


def test_points_ratio_ungraded_exclude_vs_not_met():
    crit = pts(7, 10, 5, -6)
    vs = verdicts(True, None, True, None)
    ex = run(crit, vs)
    assert ex.reward == pytest.approx(12 / 12)  # c1 and c3 leave both sums
    assert ex.n_ungraded == 2
    assert ex.per_criterion["c1"] is None
    nm = run(crit, vs, ungraded="not_met")
    assert nm.reward == pytest.approx(12 / 22)  # c1 not met, c3 behaviour absent
    assert nm.n_ungraded == 2


def test_points_ratio_missing_verdict_is_ungraded():
    crit = pts(4, 6)
    r = run(crit, [Verdict(criterion_id="c1", met=True)])
    assert r.reward == pytest.approx(1.0)
    assert r.n_ungraded == 1 and r.per_criterion["c0"] is None


def test_points_ratio_no_positive_left_gives_empty_reward():
    crit = pts(4, -6)
    r = run(crit, verdicts(None, True), empty_reward=0.25)
    assert r.reward == 0.25 and r.components == {"empty_reward": 0.25}
    r = run(crit, verdicts(None, None))
    assert r.reward == 0.0 and r.n_ungraded == 2


def test_points_ratio_matches_reference_formula_random_sweep():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        points = [float(p) for p in rng.integers(-10, 11, size=n) if p != 0] or [3.0]
        points[0] = abs(points[0])  # at least one positive item
        met = [bool(m) for m in rng.integers(0, 2, size=len(points))]
        expected = sum(p for p, m in zip(points, met) if m) / sum(p for p in points if p > 0)
        assert run(pts(*points), verdicts(*met)).reward == pytest.approx(expected)


def test_points_ratio_monotone_in_each_verdict():
    # meeting a positive item never lowers the score; exhibiting a negative one always lowers it
    crit = pts(7, 10, 5, -6, -3)
    base = [True, False, True, False, True]
    r0 = run(crit, verdicts(*base)).reward
    for i, c in enumerate(crit):
        flipped = list(base)
        flipped[i] = not flipped[i]
        r1 = run(crit, verdicts(*flipped)).reward
        gain = r1 - r0 if flipped[i] else r0 - r1  # effect of turning item i on
        assert (gain > 0) if c.points > 0 else (gain < 0)


# ---------------------------------------------------------------- weighted_mean


def weighted(weights, negative=()) -> list[Criterion]:
    return [Criterion(id=f"c{i}", text=f"item {i}", weight=w, negative=i in negative) for i, w in enumerate(weights)]


def test_weighted_mean_hand_computed_with_penalty():
    crit = weighted([1, 3, 2], negative={2})
    r = run(crit, verdicts(True, False, True), name="weighted_mean")
    # base = 1*1 / (1+3) = 0.25 ; penalty = 2*1 / 4 = 0.5 ; reward = -0.25
    assert r.components["base"] == pytest.approx(0.25)
    assert r.components["penalty"] == pytest.approx(0.5)
    assert r.reward == pytest.approx(-0.25)
    assert run(crit, verdicts(True, False, True), name="weighted_mean", clip=True).reward == 0.0


def test_weighted_mean_tiered_values():
    crit = [
        Criterion(id="c0", text="a", weight=2, tiers=TIERS),
        Criterion(id="c1", text="b", weight=1, tiers=TIERS, scale=(0, 10)),
    ]
    vs = [Verdict("c0", score=4), Verdict("c1", score=10)]
    r = run(crit, vs, name="weighted_mean")
    assert r.per_criterion == {"c0": pytest.approx(0.75), "c1": 1.0}
    assert r.reward == pytest.approx((2 * 0.75 + 1 * 1.0) / 3)


def test_weighted_mean_equals_points_ratio_on_points_rubric():
    rng = np.random.default_rng(1)
    for _ in range(100):
        points = [float(p) for p in rng.integers(1, 11, size=6)] + [float(-p) for p in rng.integers(1, 11, size=3)]
        met = [bool(m) for m in rng.integers(0, 2, size=9)]
        crit, vs = pts(*points), verdicts(*met)
        assert run(crit, vs, name="weighted_mean").reward == pytest.approx(run(crit, vs).reward)


def test_weighted_mean_is_a_weighted_average_of_values():
    # defining property: with positive criteria only, the reward is sum w v / sum w, lies between the
    # smallest and largest value, and doubling one weight pulls it towards that criterion's value
    rng = np.random.default_rng(2)
    for _ in range(100):
        w = rng.uniform(0.1, 5, size=5)
        s = rng.integers(1, 6, size=5)
        crit = [Criterion(id=f"c{i}", text="t", weight=float(w[i]), tiers=TIERS) for i in range(5)]
        vs = [Verdict(f"c{i}", score=float(s[i])) for i in range(5)]
        v = (s - 1) / 4
        r = run(crit, vs, name="weighted_mean").reward
        assert r == pytest.approx(float((w * v).sum() / w.sum()))
        assert v.min() - 1e-12 <= r <= v.max() + 1e-12
        crit2 = [c.model_copy(update={"weight": c.weight * (2 if i == 0 else 1)}) for i, c in enumerate(crit)]
        r2 = run(crit2, vs, name="weighted_mean").reward
        assert abs(r2 - v[0]) <= abs(r - v[0]) + 1e-12


def test_weighted_mean_ungraded_policies():
    crit = weighted([1, 1, 2])
    vs = verdicts(True, None, None)
    assert run(crit, vs, name="weighted_mean").reward == pytest.approx(1.0)
    assert run(crit, vs, name="weighted_mean", ungraded="not_met").reward == pytest.approx(0.25)


def test_weighted_mean_all_ungraded_and_pure_penalty_rubric():
    r = run(weighted([1, 2]), verdicts(None, None), name="weighted_mean", empty_reward=-1.0)
    assert r.reward == -1.0 and r.components == {"empty_reward": -1.0} and r.n_ungraded == 2
    # no positive criterion at all (a hacking-pattern checklist): 1 - weighted share of behaviour present
    crit = weighted([1, 3], negative={0, 1})
    assert run(crit, verdicts(False, True), name="weighted_mean").reward == pytest.approx(0.25)
    assert run(crit, verdicts(False, False), name="weighted_mean").reward == pytest.approx(1.0)
    # positives exist but are all ungraded: the base is unknown -> empty_reward
    crit = weighted([1, 3], negative={1})
    assert run(crit, verdicts(None, True), name="weighted_mean").reward == 0.0


def test_direct_call_pairs_verdicts_by_id():
    crit = pts(7, 10)
    r = get_aggregator("points_ratio")(crit, list(reversed(verdicts(True, False))), {})
    assert r.reward == pytest.approx(7 / 17)
