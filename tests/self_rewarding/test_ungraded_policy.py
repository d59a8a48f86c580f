"""self_rewarding.grader.ungraded: our default (exclude) vs MrlX's rule (not_met), one key apart."""

from __future__ import annotations

import pytest

from rubricrl.config import compose_experiment
from rubricrl.judge.interfaces import Verdict
from rubricrl.reward import rubric_reward
from rubricrl.rubrics.schema import AggregationSpec, Criterion, Rubric
from rubricrl.train.self_reward import SECTION, with_ungraded_policy


def _example():
    # The replications/self_rewarding/README.md example: +5 met, +6 ungraded, +7 / +7 / -3 not met.
    points = [5, 6, 7, 7, -3]
    rubric = Rubric(id="hb", scope="instance", aggregation=AggregationSpec(name="points_ratio"),
                    criteria=tuple(Criterion(id=f"c{i}", text=f"item {i}", points=p) for i, p in enumerate(points)))
    verdicts = [Verdict(criterion_id="c0", met=True), Verdict(criterion_id="c1", met=None),
                Verdict(criterion_id="c2", met=False), Verdict(criterion_id="c3", met=False),
                Verdict(criterion_id="c4", met=False)]
    return rubric, verdicts


def test_exclude_by_default_and_mrlx_rule_one_key_away():
    rubric, verdicts = _example()
    cfg = compose_experiment("self_rewarding", [])
    assert cfg.section(SECTION).grader.ungraded == "exclude"
    ours = rubric_reward(with_ungraded_policy(rubric, cfg.section(SECTION).grader.ungraded), verdicts)
    assert ours.reward == pytest.approx(5 / 19)  # 0.263: the ungraded +6 leaves earned and possible points
    cfg = compose_experiment("self_rewarding", ["self_rewarding.grader.ungraded=not_met"])
    mrlx = rubric_reward(with_ungraded_policy(rubric, cfg.section(SECTION).grader.ungraded), verdicts)
    assert mrlx.reward == pytest.approx(5 / 25)  # 0.2: counted as not met
    assert rubric.aggregation.params == {}  # the original rubric is not changed
