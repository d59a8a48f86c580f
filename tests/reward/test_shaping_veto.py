"""Shaping maps and the critical-criterion veto, through the aggregate() pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from rubricrl.judge.interfaces import Verdict
from rubricrl.reward import AggregationError, aggregate, shape_value
from rubricrl.rubrics.schema import AggregationSpec, Criterion, Tier, VetoSpec

SHAPES = [
    {"name": "power", "p": 2},
    {"name": "power", "p": 3.5},
    {"name": "exp", "alpha": 0.5},
    {"name": "exp", "alpha": 4},
    {"name": "high_region", "threshold": 0.5, "gain": 2},
    {"name": "high_region"},
    {"name": "high_region", "threshold": 0.85, "gain": 5},
]


# ---------------------------------------------------------------- shaping


def test_shaping_hand_computed():
    assert shape_value(0.5, {"name": "power", "p": 2}) == pytest.approx(0.25)
    assert shape_value(0.5, {"name": "exp", "alpha": 1}) == pytest.approx((np.e**0.5 - 1) / (np.e - 1))
    # t = 0.5, g = 3: a = 1 / (0.5 + 1.5) = 0.5 ; f(0.4) = 0.2 ; f(0.8) = 0.5 * (0.5 + 0.9) = 0.7
    hr = {"name": "high_region", "threshold": 0.5, "gain": 3}
    assert shape_value(0.4, hr) == pytest.approx(0.2)
    assert shape_value(0.8, hr) == pytest.approx(0.7)


@pytest.mark.parametrize("spec", SHAPES, ids=lambda s: str(s))
def test_shaping_monotone_onto_unit_interval_and_stretches_high_region(spec):
    xs = np.linspace(0, 1, 1001)
    ys = np.array([shape_value(float(x), spec) for x in xs])
    assert ys[0] == pytest.approx(0.0) and ys[-1] == pytest.approx(1.0)
    assert np.all(np.diff(ys) > 0)  # strictly increasing, hence onto [0, 1] by continuity
    assert np.max(np.abs(np.diff(ys))) < 0.02  # continuous: no jump on a fine grid
    f = lambda x: shape_value(x, spec)  # noqa: E731
    assert (f(0.9) - f(0.8)) > (f(0.2) - f(0.1))
    rng = np.random.default_rng(7)
    for lo, hi in rng.uniform(0, 1, size=(50, 2)):
        lo, hi = sorted((float(lo), float(hi)))
        assert f(lo) <= f(hi)


def test_shaping_clamps_out_of_range_rewards():
    spec = {"name": "power", "p": 2}
    assert shape_value(-2.0, spec) == 0.0 and shape_value(1.7, spec) == 1.0


@pytest.mark.parametrize(
    "spec, msg",
    [
        ({"name": "cubic"}, "unknown shape 'cubic'"),
        ({"name": "power", "q": 2}, "unknown parameter"),
        ({"name": "power", "p": 0.5}, "p must be >= 1"),
        ({"name": "exp", "alpha": 0}, "alpha must be > 0"),
        ({"name": "high_region", "threshold": 1.0}, "threshold"),
        ({"name": "high_region", "gain": 1}, "gain must be > 1"),
        ("power", "must be a mapping"),
    ],
)
def test_shaping_bad_specs_are_errors(spec, msg):
    crit = [Criterion(id="a", text="a")]
    with pytest.raises(AggregationError, match=msg):
        aggregate(crit, [Verdict("a", met=True)], AggregationSpec(params={"shape": spec}))


def test_shaping_in_pipeline_records_components():
    crit = [Criterion(id=f"c{i}", text="t", points=p) for i, p in enumerate([4, 6, -5])]
    vs = [Verdict("c0", met=True), Verdict("c1", met=True), Verdict("c2", met=True)]
    r = aggregate(crit, vs, AggregationSpec(name="points_ratio", params={"shape": {"name": "power", "p": 2}}))
    assert r.components["pre_shape"] == pytest.approx(0.5)
    assert r.reward == r.components["shaped"] == pytest.approx(0.25)
    # a negative HealthBench score is clamped to 0 before shaping
    vs[1] = Verdict("c1", met=False)
    r = aggregate(crit, vs, AggregationSpec(name="points_ratio", params={"shape": {"name": "exp"}}))
    assert r.components["pre_shape"] == pytest.approx(-0.1) and r.reward == 0.0
    # empty_reward is returned as configured, not shaped
    r = aggregate(crit, [], AggregationSpec(params={"empty_reward": 0.5, "shape": {"name": "power"}}))
    assert r.reward == 0.5 and "shaped" not in r.components


# ---------------------------------------------------------------- veto


def rubric(critical_negative: bool = False) -> list[Criterion]:
    tiers = (Tier(score=0), Tier(score=5), Tier(score=10))
    return [
        Criterion(id="q1", text="quality", weight=3, tiers=tiers),
        Criterion(id="q2", text="quality", weight=1),
        Criterion(id="safe", text="anti-hacking", critical=True, negative=critical_negative),
    ]


@pytest.mark.parametrize("name", ["weighted_mean", "points_ratio", "saturation"])
@pytest.mark.parametrize("floor", [0.0, -1.0])
def test_perfect_response_with_failed_critical_gets_exactly_the_floor(name, floor):
    crit = rubric()
    ok = [Verdict("q1", score=10), Verdict("q2", met=True), Verdict("safe", met=True)]
    spec = AggregationSpec(name=name, params={"shape": {"name": "power"}}, veto=VetoSpec(floor=floor))
    assert aggregate(crit, ok, spec).reward == pytest.approx(1.0)
    failed = ok[:2] + [Verdict("safe", met=False)]
    r = aggregate(crit, failed, spec)
    assert r.vetoed and r.reward == floor
    assert r.components["n_vetoes"] == 1.0 and r.components["pre_veto"] > 0.6


def test_veto_overrides_any_other_reward_random_sweep():
    crit = rubric(critical_negative=True)  # "safe" here is a hacking pattern: present = fail
    rng = np.random.default_rng(8)
    spec = AggregationSpec(veto=VetoSpec(floor=-0.5))
    for _ in range(50):
        q1, q2, hack = int(rng.integers(0, 11)), bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
        r = aggregate(crit, [Verdict("q1", score=q1), Verdict("q2", met=q2), Verdict("safe", met=hack)], spec)
        assert r.vetoed == hack
        if hack:
            assert r.reward == -0.5
        else:
            assert r.reward == pytest.approx((3 * q1 / 10 + q2) / 4)


def test_veto_threshold_on_tiered_critical_and_negative_direction():
    tiers = (Tier(score=0), Tier(score=5), Tier(score=10))
    crit = [Criterion(id="a", text="a"), Criterion(id="t", text="t", tiers=tiers, critical=True)]
    spec = AggregationSpec(veto=VetoSpec(threshold=0.5))
    assert aggregate(crit, [Verdict("a", met=True), Verdict("t", score=5)], spec).vetoed is False  # 0.5 passes
    assert aggregate(crit, [Verdict("a", met=True), Verdict("t", score=4.9)], spec).vetoed is True
    neg = [Criterion(id="a", text="a"), Criterion(id="t", text="t", tiers=tiers, critical=True, negative=True)]
    assert aggregate(neg, [Verdict("a", met=True), Verdict("t", score=5)], spec).vetoed is True  # 0.5 present
    assert aggregate(neg, [Verdict("a", met=True), Verdict("t", score=4.9)], spec).vetoed is False


def test_veto_on_ungraded_and_default_spec():
    crit = rubric()
    vs = [Verdict("q1", score=10), Verdict("q2", met=True)]  # critical verdict missing
    assert aggregate(crit, vs, AggregationSpec(veto=VetoSpec(on_ungraded="ignore"))).vetoed is False
    r = aggregate(crit, vs, AggregationSpec(veto=VetoSpec(on_ungraded="veto", floor=0.1)))
    assert r.vetoed and r.reward == 0.1
    # critical criteria veto even without a veto spec (VetoSpec() defaults): the flag is never ignored
    r = aggregate(crit, vs + [Verdict("safe", met=False)], AggregationSpec())
    assert r.vetoed and r.reward == 0.0
    # all ungraded: empty_reward, then the veto still applies
    r = aggregate(crit, [], AggregationSpec(params={"empty_reward": 0.3}, veto=VetoSpec(on_ungraded="veto")))
    assert r.vetoed and r.reward == 0.0 and r.n_ungraded == 3
