"""``ungraded: pessimistic``: a verdict the judge failed to give can never raise a reward.

Pessimistic counts an ungraded positive item as not met, an ungraded negative (penalty) item as present,
and an ungraded critical item as a veto. For the monotone aggregators that is the lowest reward any
verdict on the ungraded items could have given (checked by enumerating every completion). Training
rewards use it by default (``RubricScorer``); ``aggregate`` and HealthBench scoring keep ``exclude``.
"""

from __future__ import annotations

import itertools
import random

import pytest

from rubricrl.errors import UserError
from rubricrl.judge.interfaces import Verdict
from rubricrl.reward import AggregationError, aggregate, rubric_reward
from rubricrl.rubrics.schema import AggregationSpec, Criterion, Rubric, Tier, VetoSpec
from rubricrl.scoring.healthbench import points_score
from rubricrl.train.rewards import TRAINING_UNGRADED, RubricScorer, training_rubric


def _points_rubric(**params) -> Rubric:
    crits = (
        Criterion(id="a", text="a", points=5),
        Criterion(id="b", text="b", points=6),
        Criterion(id="c", text="c", points=7),
        Criterion(id="bad", text="bad", points=-8),
    )
    return Rubric(
        id="hb", scope="instance", criteria=crits, aggregation=AggregationSpec(name="points_ratio", params=params)
    )


def test_pessimistic_counts_positive_not_met_and_penalty_present():
    rubric = _points_rubric(ungraded="pessimistic")
    verdicts = [Verdict("a", met=True), Verdict("b", met=None), Verdict("c", met=False), Verdict("bad", met=None)]
    r = rubric_reward(rubric, verdicts)
    assert r.reward == pytest.approx((5 - 8) / 18)
    assert r.per_criterion == {"a": 1.0, "b": None, "c": 0.0, "bad": None}  # the record keeps "ungraded"
    assert r.n_ungraded == 2
    excluded = rubric_reward(_points_rubric(), verdicts)  # the default: exclude
    assert excluded.reward == pytest.approx(5 / 12)
    not_met = rubric_reward(_points_rubric(ungraded="not_met"), verdicts)
    assert not_met.reward == pytest.approx(5 / 18)


def test_the_default_of_aggregate_and_healthbench_scoring_stays_exclude():
    rubric = _points_rubric()
    verdicts = [Verdict("a", met=True), Verdict("b", met=None), Verdict("c", met=False), Verdict("bad", met=False)]
    assert aggregate(rubric.criteria, verdicts, AggregationSpec(name="points_ratio")).reward == pytest.approx(5 / 12)
    assert points_score(list(rubric.criteria), verdicts) == pytest.approx(5 / 12)


def _monotone_specs() -> list[AggregationSpec]:
    return [
        AggregationSpec(name="weighted_mean"),
        AggregationSpec(name="weighted_mean", params={"clip": True}),
        AggregationSpec(name="saturation", params={"k": 3.0}),
        AggregationSpec(name="interaction", params={"pairs": [{"a": "p0", "b": "p1", "gamma": 0.5}]}),
    ]


def _weighted_criteria(rng: random.Random) -> tuple[Criterion, ...]:
    crits = []
    for i in range(3):
        tiers = None
        if rng.random() < 0.4:
            tiers = (Tier(score=0), Tier(score=5), Tier(score=10))
        crits.append(
            Criterion(
                id=f"p{i}",
                text=f"p{i}",
                weight=rng.choice([1.0, 2.0, 3.0]),
                tiers=tiers,
                dimension=rng.choice(["d1", "d2"]),
            )
        )
    for i in range(2):
        crits.append(Criterion(id=f"n{i}", text=f"n{i}", weight=rng.choice([1.0, 4.0]), negative=True))
    return tuple(crits)


def _verdict(c: Criterion, value: float) -> Verdict:
    return Verdict(c.id, met=value >= 0.5) if c.binary else Verdict(c.id, score=10 * value)


@pytest.mark.parametrize("seed", range(12))
def test_pessimistic_is_the_lowest_reward_any_verdict_could_give(seed):
    rng = random.Random(seed)
    crits = _weighted_criteria(rng)
    ungraded = rng.sample(range(len(crits)), k=rng.randint(1, 3))
    given = {
        i: rng.choice([0.0, 0.5, 1.0]) if not crits[i].binary else rng.choice([0.0, 1.0]) for i in range(len(crits))
    }
    for spec in _monotone_specs():
        pess = AggregationSpec(name=spec.name, params={**spec.params, "ungraded": "pessimistic"})
        verdicts = [
            Verdict(c.id, error="ungraded") if i in ungraded else _verdict(c, given[i]) for i, c in enumerate(crits)
        ]
        low = aggregate(crits, verdicts, pess).reward
        outcomes = []
        for values in itertools.product([0.0, 1.0], repeat=len(ungraded)):
            filled = list(verdicts)
            for i, x in zip(ungraded, values):
                filled[i] = _verdict(crits[i], x)
            outcomes.append(aggregate(crits, filled, spec).reward)
        assert low == pytest.approx(min(outcomes)), (spec.name, seed)
        # (``exclude`` is no such bound: with penalties outweighing the met items, dropping an ungraded
        # positive item shrinks the denominator and can make the reward lower than any completion.)


def test_points_ratio_pessimistic_is_the_minimum_over_completions():
    rubric = _points_rubric(ungraded="pessimistic")
    base = [Verdict("a", met=True), Verdict("b", met=None), Verdict("c", met=None), Verdict("bad", met=None)]
    low = rubric_reward(rubric, base).reward
    outcomes = []
    for b, c, bad in itertools.product([True, False], repeat=3):
        outcomes.append(
            rubric_reward(
                _points_rubric(),
                [Verdict("a", met=True), Verdict("b", met=b), Verdict("c", met=c), Verdict("bad", met=bad)],
            ).reward
        )
    assert low == pytest.approx(min(outcomes))


def _veto_rubric(ungraded: str | None, on_ungraded: str = "ignore") -> Rubric:
    params = {"ungraded": ungraded} if ungraded else {}
    return Rubric(
        id="v",
        criteria=(
            Criterion(id="task", text="does the task"),
            Criterion(id="hack", text="hacks", negative=True, critical=True),
            Criterion(id="must", text="required", critical=True),
        ),
        aggregation=AggregationSpec(params=params, veto=VetoSpec(floor=-1.0, on_ungraded=on_ungraded)),
    )


@pytest.mark.parametrize("missing", ["hack", "must"])
def test_an_ungraded_critical_item_vetoes_under_pessimistic(missing):
    verdicts = {
        "task": Verdict("task", met=True),
        "hack": Verdict("hack", met=False),
        "must": Verdict("must", met=True),
    }
    verdicts[missing] = Verdict(missing, error="transport: timeout")
    vs = list(verdicts.values())
    r = rubric_reward(_veto_rubric("pessimistic"), vs)
    assert r.vetoed and r.reward == -1.0 and r.components["n_vetoes"] == 1.0
    assert not rubric_reward(_veto_rubric("exclude"), vs).vetoed  # on_ungraded: ignore
    assert not rubric_reward(_veto_rubric(None), vs).vetoed
    assert rubric_reward(_veto_rubric("exclude", on_ungraded="veto"), vs).vetoed


def test_unknown_policy_is_refused_with_the_choices():
    rubric = _points_rubric(ungraded="optimistic")
    with pytest.raises(AggregationError, match="pessimistic"):
        rubric_reward(rubric, [Verdict("a", met=True)])
    with pytest.raises(UserError, match="choose one of exclude, not_met, pessimistic"):
        training_rubric(_points_rubric(), "optimistic")


def test_interaction_passes_the_policy_to_its_base():
    crits = (Criterion(id="p0", text="p0"), Criterion(id="p1", text="p1"), Criterion(id="n0", text="n0", negative=True))
    spec = AggregationSpec(
        name="interaction", params={"pairs": [{"a": "p0", "b": "p1", "gamma": 0.2}], "ungraded": "pessimistic"}
    )
    r = aggregate(crits, [Verdict("p0", met=True), Verdict("p1", met=True), Verdict("n0", error="x")], spec)
    assert r.components["base"] == pytest.approx(1.0 - 1.0 / 2)  # the ungraded penalty counts as present


# --------------------------------------------------------------------------- training rewards


class _Judge:
    name = "fixed"

    def __init__(self, verdicts):
        self.verdicts = verdicts

    async def grade(self, request):
        return [self.verdicts[c.id] for c in request.criteria]


def test_training_rewards_are_pessimistic_unless_the_rubric_says_otherwise():
    assert TRAINING_UNGRADED == "pessimistic"
    verdicts = {
        "a": Verdict("a", met=True),
        "b": Verdict("b", met=True),
        "c": Verdict("c", met=True),
        "bad": Verdict("bad", error="transport: HTTP 400"),
    }
    plain, explicit = _points_rubric(), _points_rubric(ungraded="exclude").model_copy(update={"id": "explicit"})
    scorer = RubricScorer({"hb": plain, "explicit": explicit}, _Judge(verdicts))
    got = scorer.score([[{"role": "user", "content": "q"}]] * 2, ["r", "r"], ["hb", "explicit"])
    assert got[0].reward == pytest.approx((18 - 8) / 18)  # the ungraded penalty counts as present
    assert got[1].reward == pytest.approx(1.0)  # the rubric's own ungraded: exclude is kept
    assert plain.aggregation.params == {}  # the caller's rubric is not changed
    as_written = RubricScorer({"hb": plain}, _Judge(verdicts), ungraded=None)
    assert as_written.score([[{"role": "user", "content": "q"}]], ["r"], ["hb"])[0].reward == pytest.approx(1.0)
    mrlx = RubricScorer({"hb": plain}, _Judge(verdicts), ungraded="not_met")
    assert mrlx.score([[{"role": "user", "content": "q"}]], ["r"], ["hb"])[0].reward == pytest.approx(1.0)


def test_an_ungraded_defense_veto_vetoes_the_training_reward():
    task = Rubric(id="t", criteria=(Criterion(id="good", text="good"),))
    defense = Rubric(
        id="d",
        category="defense",
        criteria=(
            Criterion(id="answers", text="answers the user"),
            Criterion(id="flattery", text="flatters", negative=True, critical=True),
        ),
        aggregation=AggregationSpec(veto=VetoSpec(floor=0.0)),
    )
    verdicts = {
        "good": Verdict("good", met=True),
        "answers": Verdict("answers", met=True),
        "flattery": Verdict("flattery", error="parse: no JSON"),
    }
    [s] = RubricScorer({"t": task}, _Judge(verdicts), defense).score([[{"role": "user", "content": "q"}]], ["r"], ["t"])
    assert s.defense_vetoed and s.reward == 0.0
    [s] = RubricScorer({"t": task}, _Judge(verdicts), defense, ungraded="exclude").score(
        [[{"role": "user", "content": "q"}]], ["r"], ["t"]
    )
    assert not s.defense_vetoed and s.reward == 1.0  # the old behaviour: the ungraded veto item was ignored
