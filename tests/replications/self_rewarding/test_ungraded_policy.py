"""self_rewarding.grader.ungraded: our default (pessimistic) vs MrlX's rule (not_met) and exclude."""

from __future__ import annotations

import pytest

from replications.self_rewarding.common import with_ungraded_policy
from replications.self_rewarding.config import SECTION
from rubricrl.config import compose_experiment
from rubricrl.judge.interfaces import Verdict
from rubricrl.reward import rubric_reward
from rubricrl.rubrics.schema import AggregationSpec, Criterion, Rubric


def _example():
    # The replications/self_rewarding/README.md example: +5 met, +6 ungraded, +7 / +7 / -3 not met.
    points = [5, 6, 7, 7, -3]
    rubric = Rubric(
        id="hb",
        scope="instance",
        aggregation=AggregationSpec(name="points_ratio"),
        criteria=tuple(Criterion(id=f"c{i}", text=f"item {i}", points=p) for i, p in enumerate(points)),
    )
    verdicts = [
        Verdict(criterion_id="c0", met=True),
        Verdict(criterion_id="c1", met=None),
        Verdict(criterion_id="c2", met=False),
        Verdict(criterion_id="c3", met=False),
        Verdict(criterion_id="c4", met=False),
    ]
    return rubric, verdicts


def test_pessimistic_by_default_and_mrlx_and_exclude_one_key_away():
    from rubricrl.train.rewards import training_rubric

    rubric, verdicts = _example()
    cfg = compose_experiment("self_rewarding", [])
    assert cfg.section(SECTION).grader.ungraded == "pessimistic"
    ours = rubric_reward(with_ungraded_policy(rubric, cfg.section(SECTION).grader.ungraded), verdicts)
    assert ours.reward == pytest.approx(5 / 25)  # 0.2: the ungraded +6 is not met
    rewards = {}
    for policy in ("not_met", "exclude"):
        cfg = compose_experiment("self_rewarding", [f"self_rewarding.grader.ungraded={policy}"])
        r = with_ungraded_policy(rubric, cfg.section(SECTION).grader.ungraded)
        assert training_rubric(r) is r  # the scorer's training default does not override the chosen policy
        rewards[policy] = rubric_reward(r, verdicts).reward
    assert rewards == {"not_met": pytest.approx(5 / 25), "exclude": pytest.approx(5 / 19)}  # MrlX 0.2; 0.263
    # An ungraded penalty: MrlX's rule does not apply it, the default does.
    pen = [*verdicts[:4], Verdict(criterion_id="c4", met=None)]
    assert rubric_reward(with_ungraded_policy(rubric, "not_met"), pen).reward == pytest.approx(5 / 25)
    assert rubric_reward(with_ungraded_policy(rubric, "pessimistic"), pen).reward == pytest.approx(2 / 25)
    assert rubric.aggregation.params == {}  # the original rubric is not changed
