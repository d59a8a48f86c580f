"""Teacher routing (``rubricrl.reward.scorer.TeacherRoutingJudge``) and agreement (scripted judges: unit tests of
the routing and mixing logic only)."""

from __future__ import annotations

import asyncio

import pytest

from rubricrl.judge.interfaces import GradingRequest, Verdict
from rubricrl.judge.llm import JudgeStats
from rubricrl.reward.scorer import TeacherRoutingJudge, agreement, teacher_selected
from rubricrl.rubrics.schema import Criterion

CRITERIA = [Criterion(id=f"c{i}", text=f"item {i}", points=p) for i, p in enumerate([5, 3, -2])]


class Scripted:
    """Returns fixed verdicts per criterion id (None = ungraded)."""

    def __init__(self, name: str, mets: dict[str, bool | None]):
        self.name = name
        self.mets = mets
        self.stats = JudgeStats()
        self.calls = 0

    async def grade(self, request):
        self.calls += 1
        return [
            Verdict(c.id, met=self.mets[c.id], judge=self.name, error=None if self.mets[c.id] is not None else "x")
            for c in request.criteria
        ]


def _req(i: int) -> GradingRequest:
    return GradingRequest([{"role": "user", "content": f"q{i}"}], f"answer {i}", CRITERIA, rubric_id=f"p{i}")


def test_agreement_and_kappa_by_hand():
    pairs = [(True, True)] * 4 + [(False, False)] * 2 + [(True, False)] * 3 + [(False, True)]
    a = agreement(pairs)
    po, ps, pt = 0.6, 0.7, 0.5
    pe = ps * pt + (1 - ps) * (1 - pt)
    assert a["n"] == 10 and a["agreement"] == pytest.approx(po)
    assert a["kappa"] == pytest.approx((po - pe) / (1 - pe))
    assert a["self_true_rate"] == pytest.approx(ps) and a["teacher_true_rate"] == pytest.approx(pt)
    assert agreement([(True, True)] * 3)["kappa"] is None  # chance agreement 1: undefined, not 1 or 0
    assert agreement([])["agreement"] is None


def test_selection_is_deterministic_and_near_the_fraction():
    reqs = [_req(i) for i in range(2000)]
    chosen = [teacher_selected(r, 0.25, seed=3) for r in reqs]
    assert chosen == [teacher_selected(r, 0.25, seed=3) for r in reqs]
    assert 0.21 < sum(chosen) / len(chosen) < 0.29
    assert chosen != [teacher_selected(r, 0.25, seed=4) for r in reqs]
    assert not any(teacher_selected(r, 0.0, 0) for r in reqs[:50])
    assert all(teacher_selected(r, 1.0, 0) for r in reqs[:50])


def test_replace_uses_teacher_verdicts_and_falls_back_when_teacher_is_ungraded():
    own = Scripted("self", {"c0": True, "c1": True, "c2": False})
    teach = Scripted("teacher", {"c0": False, "c1": None, "c2": False})
    j = TeacherRoutingJudge(own, teach, fraction=1.0, replace=True)
    v = asyncio.run(j.grade(_req(0)))
    assert [x.met for x in v] == [False, True, False]
    assert [x.judge for x in v] == ["teacher", "self", "teacher"]
    assert j.teacher_fallbacks == 1 and j.teacher_samples == 1
    assert j.take_pairs() == [(True, False), (False, False)]  # the ungraded item is not a pair
    assert j.take_pairs() == []


def test_without_replace_the_teacher_only_measures():
    own = Scripted("self", {"c0": True, "c1": False, "c2": False})
    teach = Scripted("teacher", {"c0": False, "c1": False, "c2": True})
    j = TeacherRoutingJudge(own, teach, fraction=1.0, replace=False)
    v = asyncio.run(j.grade(_req(1)))
    assert [x.judge for x in v] == ["self"] * 3
    assert agreement(j.take_pairs())["agreement"] == pytest.approx(1 / 3)


def test_fraction_zero_never_calls_the_teacher_and_fraction_needs_a_teacher():
    own = Scripted("self", {"c0": True, "c1": True, "c2": True})
    teach = Scripted("teacher", {"c0": True, "c1": True, "c2": True})
    j = TeacherRoutingJudge(own, teach, fraction=0.0)
    for i in range(20):
        asyncio.run(j.grade(_req(i)))
    assert teach.calls == 0 and own.calls == 20
    with pytest.raises(ValueError):
        TeacherRoutingJudge(own, None, fraction=0.5)


def test_a_forced_route_overrides_the_hash_and_route_reports_who_graded():
    own = Scripted("self", {"c0": True, "c1": True, "c2": False})
    teach = Scripted("teacher", {"c0": False, "c1": False, "c2": False})
    j = TeacherRoutingJudge(own, teach, fraction=0.0, replace=True)
    routed = asyncio.run(j.route(_req(2), to_teacher=True))
    assert routed.teacher and routed.graded_by == "teacher" and teach.calls == 1
    assert routed.pairs == [(True, False), (True, False), (False, False)]
    plain = asyncio.run(j.route(_req(2)))  # fraction 0: the hash never picks the teacher
    assert not plain.teacher and plain.graded_by == "judge" and plain.pairs == [] and teach.calls == 1
