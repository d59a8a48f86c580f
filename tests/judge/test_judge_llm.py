"""LLMJudge logic around the model: retries with backoff, ungraded after the budget, stats, modes.

The backend here is scripted on purpose: these tests are about the judge's control flow, not a model.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from rubricrl.judge.backends import TransportError
from rubricrl.judge.build import run_sync
from rubricrl.judge.llm import LLMJudge

from .helpers import FAST, ScriptedBackend, crit_neg, crit_pos, crit_tiered, met, request


def grade(judge, req):
    return run_sync(judge.grade(req))


def test_graded_first_try():
    b = ScriptedBackend(met(True, "sees doctor"))
    j = LLMJudge(b, sampling={"temperature": 0.6, "top_k": 20}, **FAST)
    [v] = grade(j, request(crit_pos()))
    assert (v.met, v.score, v.explanation, v.attempts, v.error, v.judge) == (
        True,
        None,
        "sees doctor",
        1,
        None,
        "scripted-judge",
    )
    assert b.sampling[0] == {"temperature": 0.6, "top_k": 20}
    assert j.stats.calls == 1 and j.stats.graded == 1 and j.stats.ungraded == 0


def test_transport_errors_then_success_counts_attempts():
    b = ScriptedBackend(TransportError("refused"), TransportError("HTTP 500", 500), met(False))
    j = LLMJudge(b, retries=3, **FAST)
    [v] = grade(j, request(crit_pos()))
    assert v.met is False and v.attempts == 3 and v.error is None
    assert j.stats.transport_errors == 2 and j.stats.retries == 2 and j.stats.calls == 3


def test_unparsable_then_ungraded_never_false(caplog):
    b = ScriptedBackend("I think it is fine.", '{"criteria_met": "maybe"}')
    j = LLMJudge(b, retries=2, **FAST)
    with caplog.at_level(logging.WARNING, logger="rubricrl.judge.llm"):
        [v] = grade(j, request(crit_pos()))
    assert v.met is None and v.score is None and v.ungraded
    assert v.attempts == 3 and b.calls == 3
    assert v.error.startswith("parse:") and "boolean" in v.error
    assert j.stats.parse_failures == 3 and j.stats.ungraded == 1 and j.stats.graded == 0
    assert any("ungraded after 3 attempts" in r.message for r in caplog.records)


def test_retries_zero_means_one_attempt():
    b = ScriptedBackend(TransportError("down"))
    j = LLMJudge(b, retries=0, **FAST)
    [v] = grade(j, request(crit_pos()))
    assert v.ungraded and v.attempts == 1 and "down" in v.error


def test_backoff_grows_exponentially(monkeypatch):
    slept = []
    real_sleep = asyncio.sleep

    async def fake_sleep(s):
        slept.append(s)
        await real_sleep(0)

    monkeypatch.setattr("rubricrl.judge.llm.asyncio.sleep", fake_sleep)
    j = LLMJudge(ScriptedBackend(TransportError("x")), retries=5, backoff=(0.5, 3.0, 2.0))
    [v] = grade(j, request(crit_pos()))
    caps = [0.5, 1.0, 2.0, 3.0, 3.0]  # each wait is jittered within [cap / 2, cap]
    assert len(slept) == 5 and all(c / 2 <= w <= c for w, c in zip(slept, caps)) and v.attempts == 6, slept


def test_per_call_timeout_is_retried_then_ungraded():
    b = ScriptedBackend(met(True), delay_s=0.5)
    j = LLMJudge(b, retries=1, timeout_s=0.05, **FAST)
    [v] = grade(j, request(crit_pos()))
    assert v.ungraded and v.attempts == 2 and "timeout" in v.error
    assert j.stats.transport_errors == 2


def test_concurrency_is_bounded():
    b = ScriptedBackend(met(True), delay_s=0.02)
    j = LLMJudge(b, concurrency=2, **FAST)
    crits = [crit_pos(f"c{i}") for i in range(7)]
    verdicts = grade(j, request(*crits))
    assert [v.criterion_id for v in verdicts] == [c.id for c in crits]
    assert b.max_in_flight == 2


def test_tiered_score_and_out_of_range_retry():
    b = ScriptedBackend('{"explanation": "", "score": 12}', '{"explanation": "clear", "score": "8"}')
    j = LLMJudge(b, mode="tiered", **FAST)
    [v] = grade(j, request(crit_tiered()))
    assert v.score == 8.0 and v.met is None and v.attempts == 2
    assert "Score levels" in b.prompts[0]


def test_retries_reuse_the_responses_nonce_and_each_grading_draws_a_new_one():
    b = ScriptedBackend("no json", met(True))
    j = LLMJudge(b, **FAST)
    grade(j, request(crit_pos()))
    grade(j, request(crit_pos()))  # graded again later: a fresh nonce
    import re

    tags = [re.search(r'<(turn-[0-9a-f]{12}) role="user">', p).group(1) for p in b.prompts]
    assert len(tags) == 3 and tags[0] == tags[1] != tags[2]


def test_batch_partial_answer_falls_back_to_one_call_per_missing_criterion():
    first = '[{"id": "a", "criteria_met": true, "explanation": ""}, {"id": "c", "score": 99}]'

    def single(prompt: str) -> str:  # per-criterion templates: binary for b, tiered for c
        return '{"explanation": "ok", "score": 5}' if "Score levels" in prompt else met(False)

    b = ScriptedBackend(first, single)
    j = LLMJudge(b, mode="batch", **FAST)
    va, vb, vc = grade(j, request(crit_pos("a"), crit_neg("b"), crit_tiered("c")))
    assert va.met is True and vb.met is False and vc.score == 5.0
    assert b.calls == 3 and "## id: a" in b.prompts[0]
    assert all("## id:" not in p for p in b.prompts[1:])
    assert any("# Rubric item" in p and "[-6] Recommends" in p for p in b.prompts[1:])
    assert va.attempts == 1 and vb.attempts == vc.attempts == 2
    assert j.stats.batch_fallbacks == 2 and j.stats.graded == 3 and j.stats.ungraded == 0


def test_holistic_maps_one_score_onto_each_criterion():
    b = ScriptedBackend('{"explanation": "good", "score": 8}')
    j = LLMJudge(b, mode="holistic", **FAST)
    vp, vn, vt = grade(j, request(crit_pos(), crit_neg(), crit_tiered()))
    assert b.calls == 1
    assert vp.met is True and vn.met is False  # a good reply meets positives and avoids negatives
    assert vt.score == pytest.approx(10 * (8 - 1) / 9)


def test_bugs_in_backend_are_not_swallowed():
    j = LLMJudge(ScriptedBackend(TypeError("bug")), **FAST)
    with pytest.raises(TypeError):
        grade(j, request(crit_pos()))
