"""No judge reply can crash a run (issue 13 item 3): every parse path turns any exception, such as the
``RecursionError`` of a reply nested 5000 levels deep, into a ParseError, which the judge retries a bounded
number of times and then reports as ungraded."""

from __future__ import annotations

import pytest

from rubricrl.judge.build import run_sync
from rubricrl.judge.llm import LLMJudge
from rubricrl.judge.parsing import ParseError, extract_json, parse_batch, parse_binary, parse_score

from .helpers import FAST, ScriptedBackend, crit_pos, crit_tiered, met, request

DEEP = "[" * 5000
DEEP_OBJECTS = '{"a":' * 5000


@pytest.mark.parametrize("reply", [DEEP, DEEP_OBJECTS, "```json\n" + DEEP + "\n```", "[{" * 3000])
def test_deep_nesting_is_a_parse_error(reply):
    for parse in (lambda t: parse_binary(t), lambda t: parse_score(t, 0, 10), lambda t: extract_json(t, dict)):
        with pytest.raises(ParseError, match="nested too deeply|no JSON"):
            parse(reply)
    with pytest.raises(ParseError):
        parse_batch(reply, [("c1", True, (0, 1))])


def test_an_answer_after_deep_nesting_is_still_found():
    assert parse_binary(DEEP + met(True)).met is True


def test_judge_retries_a_deep_reply_then_grades():
    b = ScriptedBackend(DEEP, met(True, "ok"))
    j = LLMJudge(b, retries=2, **FAST)
    [v] = run_sync(j.grade(request(crit_pos())))
    assert v.met is True and v.attempts == 2 and j.stats.parse_failures == 1


@pytest.mark.parametrize("mode", ["binary", "batch"])
def test_judge_always_deep_gives_ungraded_not_a_crash(mode):
    j = LLMJudge(ScriptedBackend(DEEP), mode=mode, retries=2, **FAST)
    verdicts = run_sync(j.grade(request(crit_pos("a"), crit_pos("b"))))
    assert [v.met for v in verdicts] == [None, None] and all("parse" in (v.error or "") for v in verdicts)


def test_tiered_deep_reply_is_ungraded():
    j = LLMJudge(ScriptedBackend(DEEP_OBJECTS), retries=1, **FAST)
    [v] = run_sync(j.grade(request(crit_tiered())))
    assert v.score is None and v.ungraded and v.attempts == 2
