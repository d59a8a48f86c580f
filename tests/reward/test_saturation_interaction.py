"""saturation and interaction aggregators: defining properties and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rubricrl.judge.interfaces import Verdict
from rubricrl.reward import AggregationError, aggregate, check_spec, saturate
from rubricrl.rubrics.schema import AggregationSpec, Criterion, Tier

TIERS = tuple(Tier(score=s) for s in range(0, 11))  # raw 0..10 -> value s / 10


def dims(*spec: tuple[str, float], negative: dict[str, float] | None = None) -> list[Criterion]:
    """One tiered criterion per (dimension, weight); extra binary negative criteria by id -> weight."""
    out = [Criterion(id=d, text=d, weight=w, tiers=TIERS) for d, w in spec]
    out += [Criterion(id=n, text=n, weight=w, negative=True) for n, w in (negative or {}).items()]
    return out


def scores(**values: float) -> list[Verdict]:
    """Verdicts from id -> value in [0, 1] (tiered, raw = 10 * value) or bool (binary)."""
    return [Verdict(k, met=v) if isinstance(v, bool) else Verdict(k, score=round(10 * v, 9)) for k, v in values.items()]


def sat(criteria, vs, **params) -> float:
    return aggregate(criteria, vs, AggregationSpec(name="saturation", params=params)).reward


# ---------------------------------------------------------------- saturation


def test_saturate_endpoints_and_value():
    assert saturate(0.0, 3) == 0.0 and saturate(1.0, 3) == pytest.approx(1.0)
    assert saturate(0.5, 2) == pytest.approx((1 - math.exp(-1)) / (1 - math.exp(-2)))


def test_saturation_hand_computed():
    crit = dims(("a", 1.0), ("b", 3.0))
    k = 2.0
    expected = (1 * saturate(0.4, k) + 3 * saturate(1.0, k)) / 4
    assert sat(crit, scores(a=0.4, b=1.0), k=k) == pytest.approx(expected)


def test_saturation_groups_by_dimension_with_weighted_group_score():
    crit = [
        Criterion(id="x1", text="x", weight=1, dimension="x"),
        Criterion(id="x2", text="x", weight=3, dimension="x"),
        Criterion(id="y1", text="y", weight=2, dimension="y"),
    ]
    r = aggregate(crit, scores(x1=True, x2=False, y1=True), AggregationSpec(name="saturation", params={"k": 1.5}))
    assert r.components["s:x"] == pytest.approx(0.25) and r.components["s:y"] == 1.0
    assert r.reward == pytest.approx((4 * saturate(0.25, 1.5) + 2 * 1.0) / 6)


def test_saturation_diminishing_returns_in_one_dimension():
    crit = dims(("a", 1.0), ("b", 1.0))
    rng = np.random.default_rng(3)
    for k in (0.5, 1.0, 3.0, 8.0):
        for other in rng.uniform(0, 1, size=5):
            other = round(float(other), 1)
            top = sat(crit, scores(a=1.0, b=other), k=k) - sat(crit, scores(a=0.8, b=other), k=k)
            bottom = sat(crit, scores(a=0.2, b=other), k=k) - sat(crit, scores(a=0.0, b=other), k=k)
            assert 0 < top < bottom


def test_saturation_concave_random_sweep():
    # the reward as a function of one dimension's score has decreasing increments over any grid
    crit = dims(("a", 2.0), ("b", 1.0), ("c", 0.5))
    rng = np.random.default_rng(4)
    grid = np.round(np.arange(0, 1.01, 0.1), 1)
    for _ in range(20):
        k = float(rng.uniform(0.2, 6))
        b, c = (round(float(x), 1) for x in rng.uniform(0, 1, size=2))
        curve = np.array([sat(crit, scores(a=float(a), b=b, c=c), k=k) for a in grid])
        steps = np.diff(curve)
        assert np.all(steps > 0)
        assert np.all(np.diff(steps) < 1e-12)


def test_saturation_spreading_beats_concentrating():
    crit = dims(("a", 1.0), ("b", 1.0), ("c", 1.0))
    rng = np.random.default_rng(5)
    for _ in range(20):
        k = float(rng.uniform(0.3, 6))
        spread = sat(crit, scores(a=0.3, b=0.3, c=0.3), k=k)
        concentrated = sat(crit, scores(a=0.9, b=0.0, c=0.0), k=k)
        assert spread > concentrated
    # the plain weighted mean cannot tell them apart
    cases = ({"a": 0.3, "b": 0.3, "c": 0.3}, {"a": 0.9, "b": 0.0, "c": 0.0})
    wm = [aggregate(crit, scores(**v), AggregationSpec()).reward for v in cases]
    assert wm[0] == pytest.approx(wm[1])


def test_saturation_small_k_approaches_weighted_mean_and_penalty():
    crit = dims(("a", 1.0), ("b", 3.0), negative={"n": 2.0})
    vs = scores(a=0.2, b=0.7, n=True)
    wm = aggregate(crit, vs, AggregationSpec()).reward
    assert sat(crit, vs, k=1e-6) == pytest.approx(wm, abs=1e-6)
    r = aggregate(crit, vs, AggregationSpec(name="saturation", params={"k": 3}))
    assert r.components["penalty"] == pytest.approx(2 / 4)
    assert r.reward == pytest.approx(r.components["base"] - 0.5)
    assert aggregate(crit, vs, AggregationSpec(name="saturation", params={"k": 3, "clip": True})).reward >= 0


def test_saturation_ungraded_and_bad_k():
    crit = dims(("a", 1.0), ("b", 1.0))
    vs = [Verdict("a", score=10)]
    assert sat(crit, vs, k=2) == pytest.approx(1.0)  # b excluded with its dimension
    assert sat(crit, vs, k=2, ungraded="not_met") == pytest.approx(0.5)
    assert sat(crit, [], k=2, empty_reward=0.1) == 0.1
    for bad in (0, -1, "3", True):
        with pytest.raises(AggregationError, match="'k'"):
            sat(crit, vs, k=bad)


# ---------------------------------------------------------------- interaction


def inter(criteria, vs, pairs, **params):
    spec = AggregationSpec(name="interaction", params={"pairs": pairs, **params})
    return aggregate(criteria, vs, spec)


def test_interaction_hand_computed():
    crit = dims(("a", 1.0), ("b", 1.0), ("c", 2.0))
    r = inter(crit, scores(a=0.5, b=0.8, c=1.0), [{"a": "a", "b": "b", "gamma": 0.5}])
    base = (0.5 + 0.8 + 2.0) / 4
    assert r.components["base"] == pytest.approx(base)
    assert r.components["interaction"] == pytest.approx(0.5 * 0.5 * 0.8)
    assert r.reward == pytest.approx(base + 0.2)


@pytest.mark.parametrize("gamma", [0.3, -0.3])
def test_interaction_term_is_bilinear_cross_effect(gamma):
    # defining property: the pair changes the reward by exactly gamma * s_a * s_b, so it vanishes when
    # either score is 0, and r(1,1) - r(1,0) - r(0,1) + r(0,0) = gamma (synergy > 0, antagonism < 0)
    crit = dims(("a", 1.0), ("b", 1.0), ("c", 1.0))
    pairs = [{"a": "a", "b": "b", "gamma": gamma}]
    rng = np.random.default_rng(6)
    for _ in range(30):
        a, b, c = (round(float(x), 1) for x in rng.uniform(0, 1, size=3))
        vs = scores(a=a, b=b, c=c)
        delta = inter(crit, vs, pairs).reward - aggregate(crit, vs, AggregationSpec()).reward
        assert delta == pytest.approx(gamma * a * b)
        if a == 0 or b == 0:
            assert delta == pytest.approx(0.0)
    r = {(x, y): inter(crit, scores(a=x, b=y, c=0.5), pairs).reward for x in (0.0, 1.0) for y in (0.0, 1.0)}
    assert r[1, 1] - r[1, 0] - r[0, 1] + r[0, 0] == pytest.approx(gamma)
    if gamma > 0:  # synergy pays only when both are high
        assert r[1, 1] - r[0, 0] > (r[1, 0] - r[0, 0]) + (r[0, 1] - r[0, 0])
    else:  # antagonism lowers the reward when both are high
        assert r[1, 1] - r[0, 0] < (r[1, 0] - r[0, 0]) + (r[0, 1] - r[0, 0])


def test_interaction_dimension_reference_negative_quality_and_base():
    crit = [
        Criterion(id="s1", text="s", weight=1, dimension="style"),
        Criterion(id="s2", text="s", weight=1, dimension="style"),
        Criterion(id="hack", text="h", weight=2, negative=True),
    ]
    vs = scores(s1=True, s2=False, hack=False)
    # s_style = 0.5; s_hack = 1 - 0 = 1 (behaviour absent); base saturation k=2 of style = g(0.5)
    r = inter(crit, vs, [{"a": "style", "b": "hack", "gamma": 0.4}], base="saturation", base_params={"k": 2})
    assert r.components["base"] == pytest.approx(saturate(0.5, 2))
    assert r.components["interaction"] == pytest.approx(0.4 * 0.5 * 1.0)
    assert r.components["base.s:style"] == pytest.approx(0.5)


def test_interaction_clip_and_ungraded_pair_skipped():
    crit = dims(("a", 1.0), ("b", 1.0))
    r = inter(crit, scores(a=1.0, b=1.0), [{"a": "a", "b": "b", "gamma": 0.5}], clip=True)
    assert r.reward == 1.0 and r.components["pre_clip"] == pytest.approx(1.5)
    r = inter(crit, [Verdict("a", score=10)], [{"a": "a", "b": "b", "gamma": 0.5}])
    assert r.reward == pytest.approx(1.0) and r.components["interaction_skipped"] == 1.0
    r = inter(crit, [], [{"a": "a", "b": "b", "gamma": 0.5}], empty_reward=0.2)
    assert r.reward == 0.2 and r.n_ungraded == 2


def test_interaction_unknown_reference_and_bad_params_are_errors():
    crit = dims(("a", 1.0), ("b", 1.0))
    with pytest.raises(AggregationError, match="'zz' is neither a criterion id nor a dimension"):
        inter(crit, scores(a=1.0, b=1.0), [{"a": "a", "b": "zz", "gamma": 0.5}])
    spec = AggregationSpec(name="interaction", params={"pairs": [{"a": "a", "b": "zz", "gamma": 1}]})
    assert check_spec(spec) is None  # references are checked only against criteria
    assert "'zz'" in check_spec(spec, crit)
    bad = [
        ({"pairs": []}, "non-empty list"),
        ({"pairs": [{"a": "a", "b": "b"}]}, "exactly the keys"),
        ({"pairs": [{"a": "a", "b": "b", "gamma": "big"}]}, "gamma"),
        ({"pairs": [{"a": "a", "b": "b", "gamma": 1}], "base": "nope"}, "'base' 'nope' is not a registered aggregator"),
        ({"pairs": [{"a": "a", "b": "b", "gamma": 1}], "base": "interaction"}, "cannot be"),
        ({"pairs": [{"a": "a", "b": "b", "gamma": 1}], "base_params": {"kk": 1}}, "unknown parameter"),
        ({"pairs": [{"a": "a", "b": "b", "gamma": 1}], "base_params": {"ungraded": "not_met"}}, "not in base_params"),
    ]
    for params, msg in bad:
        assert msg in check_spec(AggregationSpec(name="interaction", params=params))
