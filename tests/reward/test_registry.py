"""Registry, parameter checking, verdict pairing and criterion_value."""

from __future__ import annotations

import pytest

from rubricrl.judge.interfaces import Verdict
from rubricrl.reward import (
    AGGREGATORS,
    AggregationError,
    RewardResult,
    aggregate,
    check_spec,
    criterion_value,
    get_aggregator,
    points_ratio,
    register,
    rubric_reward,
)
from rubricrl.rubrics.schema import AggregationSpec, Criterion, Rubric, Tier

TIERS = (Tier(score=1), Tier(score=3), Tier(score=5))
ALL = ["weighted_mean", "points_ratio", "healthbench", "saturation", "interaction"]


def test_builtins_registered_and_alias():
    assert set(ALL) <= set(AGGREGATORS)
    assert get_aggregator("healthbench") is get_aggregator("points_ratio") is points_ratio


def test_unknown_aggregator_lists_known_names():
    with pytest.raises(AggregationError) as e:
        get_aggregator("weigthed_mean")
    for name in ALL:
        assert name in str(e.value)
    crit = [Criterion(id="a", text="a")]
    with pytest.raises(AggregationError, match="unknown aggregator 'nope'"):
        aggregate(crit, [], AggregationSpec(name="nope"))
    assert "unknown aggregator 'nope'" in check_spec(AggregationSpec(name="nope"))


@pytest.mark.parametrize("name", ["weighted_mean", "points_ratio", "saturation"])
def test_unknown_param_is_an_error_not_ignored(name):
    crit = [Criterion(id="a", text="a")]
    spec = AggregationSpec(name=name, params={"ungradd": "not_met"})
    with pytest.raises(AggregationError, match=r"unknown parameter\(s\) 'ungradd'.*accepted: .*ungraded"):
        aggregate(crit, [Verdict("a", met=True)], spec)
    assert "'ungradd'" in check_spec(spec)


def test_points_ratio_rejects_clip():
    # the HealthBench per-example score is never clipped; asking for it is a mistake, not a no-op
    assert "'clip'" in check_spec(AggregationSpec(name="points_ratio", params={"clip": True}))


@pytest.mark.parametrize(
    "params, msg",
    [
        ({"ungraded": "skip"}, "'ungraded' must be one of"),
        ({"empty_reward": "zero"}, "'empty_reward' must be a number"),
        ({"clip": "yes"}, "'clip' must be true or false"),
        ({"shape": {"name": "nope"}}, "unknown shape"),
    ],
)
def test_bad_param_values(params, msg):
    assert msg in check_spec(AggregationSpec(name="weighted_mean", params=params))


def test_valid_specs_pass_check_spec():
    for spec in [
        AggregationSpec(),
        AggregationSpec(name="healthbench", params={"ungraded": "not_met", "empty_reward": 0}),
        AggregationSpec(name="saturation", params={"k": 2, "clip": True, "shape": {"name": "exp", "alpha": 2}}),
        AggregationSpec(name="interaction", params={"pairs": [{"a": "x", "b": "y", "gamma": -0.2}]}),
    ]:
        assert check_spec(spec) is None, spec


def test_verdict_pairing_errors():
    crit = [Criterion(id="a", text="a"), Criterion(id="b", text="b")]
    with pytest.raises(AggregationError, match="unknown criterion 'c'"):
        aggregate(crit, [Verdict("c", met=True)], AggregationSpec())
    with pytest.raises(AggregationError, match="two verdicts for criterion 'a'"):
        aggregate(crit, [Verdict("a", met=True), Verdict("a", met=False)], AggregationSpec())


def test_verdict_order_does_not_matter():
    crit = [Criterion(id="a", text="a", weight=3), Criterion(id="b", text="b")]
    fwd = aggregate(crit, [Verdict("a", met=True), Verdict("b", met=False)], AggregationSpec())
    rev = aggregate(crit, [Verdict("b", met=False), Verdict("a", met=True)], AggregationSpec())
    assert fwd.reward == rev.reward == pytest.approx(0.75)


def test_rubric_reward_uses_rubric_aggregation():
    rub = Rubric(
        id="r",
        criteria=(Criterion(id="a", text="a", points=7), Criterion(id="b", text="b", points=-7)),
        aggregation=AggregationSpec(name="healthbench"),
    )
    r = rubric_reward(rub, [Verdict("a", met=False), Verdict("b", met=True)])
    assert r.reward == pytest.approx(-1.0)  # not clipped, as points_ratio


def test_register_custom_aggregator_and_duplicates():
    def constant(criteria, verdicts, params):
        return RewardResult(float(params.get("value", 0.0)))

    register("test_constant", params=("value",))(constant)
    try:
        crit = [Criterion(id="a", text="a")]
        spec = AggregationSpec(name="test_constant", params={"value": 0.4, "shape": {"name": "power"}})
        r = aggregate(crit, [], spec)
        assert r.reward == pytest.approx(0.16)
        with pytest.raises(ValueError, match="already registered"):
            register("weighted_mean")(constant)
    finally:
        AGGREGATORS.pop("test_constant", None)


# ---------------------------------------------------------------- criterion_value


def test_criterion_value_binary_tiered_and_ungraded():
    b = Criterion(id="b", text="b")
    t = Criterion(id="t", text="t", tiers=TIERS)
    ts = Criterion(id="s", text="s", tiers=TIERS, scale=(0, 10))
    n = Criterion(id="n", text="n", negative=True)
    assert criterion_value(b, Verdict("b", met=True)) == 1.0
    assert criterion_value(b, Verdict("b", met=False)) == 0.0
    assert criterion_value(b, Verdict("b", score=0.7)) == pytest.approx(0.7)  # programmatic fraction
    assert criterion_value(n, Verdict("n", met=True)) == 1.0  # behaviour present
    assert criterion_value(t, Verdict("t", score=4)) == pytest.approx(0.75)
    assert criterion_value(t, Verdict("t", score=9)) == 1.0  # clamped by normalise
    assert criterion_value(ts, Verdict("s", score=4)) == pytest.approx(0.4)
    assert criterion_value(t, Verdict("t", met=True)) == 1.0
    assert criterion_value(t, Verdict("t", met=False)) == 0.0
    assert criterion_value(t, Verdict("t", met=False, score=5)) == 1.0  # the tier score wins
    for c in (b, t, n):
        assert criterion_value(c, Verdict(c.id, error="timeout")) is None


@pytest.mark.parametrize("name", ["weighted_mean", "points_ratio", "saturation"])
def test_per_criterion_and_n_ungraded_for_every_aggregator(name):
    crit = [
        Criterion(id="a", text="a", weight=2, tiers=TIERS),
        Criterion(id="b", text="b"),
        Criterion(id="c", text="c"),
    ]
    r = aggregate(crit, [Verdict("a", score=3), Verdict("b", met=None, error="parse")], AggregationSpec(name=name))
    assert r.per_criterion == {"a": 0.5, "b": None, "c": None}
    assert r.n_ungraded == 2
    r = aggregate(crit, [], AggregationSpec(name=name, params={"empty_reward": -0.25}))
    assert r.reward == -0.25 and r.components == {"empty_reward": -0.25} and r.n_ungraded == 3
