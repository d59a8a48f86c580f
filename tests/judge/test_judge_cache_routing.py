"""Verdict cache, replay, routing by criterion kind, and build_judge for every backend."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from rubricrl.errors import UserError
from rubricrl.judge import (
    JudgeConfig,
    LLMJudge,
    ReplayJudge,
    RoutingJudge,
    VerdictCache,
    build_judge,
    close_judge,
    grade_many,
    run_sync,
)
from rubricrl.judge.interfaces import Verdict
from rubricrl.judge.replay import NOT_IN_CACHE
from rubricrl.rubrics.schema import Criterion
from rubricrl.rubrics.verifiers import VERIFIERS, VerifierResult, verifier

from .helpers import FAST, ScriptedBackend, crit_neg, crit_pos, met, request

if "judge_test_explodes" not in VERIFIERS:

    @verifier("judge_test_explodes")
    def _explodes(response: str) -> VerifierResult:
        raise RuntimeError("verifier bug")


def prog(cid: str = "nocomma", name: str = "no_commas") -> Criterion:
    return Criterion(id=cid, text="No commas", kind="programmatic", verifier=name)


def test_cache_hit_avoids_a_call_and_is_marked(tmp_path):
    b = ScriptedBackend(met(True, "first"))
    judge = RoutingJudge(LLMJudge(b, **FAST), cache=VerdictCache(tmp_path / "v.sqlite"))
    req = request(crit_pos(), crit_neg())
    first = run_sync(judge.grade(req))
    assert b.calls == 2 and not any(v.cached for v in first)
    second = run_sync(judge.grade(req))
    assert b.calls == 2, "a cached verdict must not call the model"
    assert [(v.criterion_id, v.met, v.explanation, v.cached) for v in second] == [
        ("pos", True, "first", True),
        ("neg", True, "first", True),
    ]
    assert judge.stats.cache_hits == 2 and judge.stats.calls == 2
    judge.stats.reset()
    assert judge.stats.cache_hits == 0 and judge.stats.calls == 0
    # a different response is a different key
    run_sync(judge.grade(request(crit_pos(), response="Drink water.")))
    assert b.calls == 3


def test_cache_key_covers_criterion_content_not_id(tmp_path):
    b = ScriptedBackend(met(True))
    judge = RoutingJudge(LLMJudge(b, **FAST), cache=VerdictCache(tmp_path / "v.sqlite"))
    run_sync(judge.grade(request(crit_pos("x", points=5))))
    run_sync(judge.grade(request(crit_pos("renamed", points=5))))
    assert b.calls == 1
    run_sync(judge.grade(request(crit_pos("x", points=4))))
    assert b.calls == 2


def test_ungraded_verdicts_are_not_cached(tmp_path):
    cache = VerdictCache(tmp_path / "v.sqlite")
    b = ScriptedBackend("not json")
    judge = RoutingJudge(LLMJudge(b, retries=1, **FAST), cache=cache)
    [v] = run_sync(judge.grade(request(crit_pos())))
    assert v.ungraded and len(cache) == 0
    assert cache.put("k", Verdict("pos")) is False


def test_cache_is_safe_from_many_threads(tmp_path):
    cache = VerdictCache(tmp_path / "v.sqlite")

    def work(n):
        for i in range(50):
            cache.put(f"{n}-{i}", Verdict(f"c{i}", met=True, judge="j"))
            assert cache.get(f"{n}-{i}", f"c{i}").met is True

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(cache) == 200


def test_replay_serves_hits_and_leaves_misses_ungraded(tmp_path):
    path = tmp_path / "v.sqlite"
    live = RoutingJudge(LLMJudge(ScriptedBackend(met(False, "no dose")), **FAST), cache=VerdictCache(path))
    run_sync(live.grade(request(crit_neg())))
    run_sync(live.aclose())
    replay = RoutingJudge(ReplayJudge(path, "scripted-judge"))
    hit, miss = run_sync(replay.grade(request(crit_neg(), crit_pos())))
    assert hit.met is False and hit.explanation == "no dose" and hit.cached
    assert miss.ungraded and miss.error == NOT_IN_CACHE
    assert replay.stats.ungraded == 1 and replay.stats.cache_hits == 1
    # another judge model's cache entries do not match
    [other] = run_sync(RoutingJudge(ReplayJudge(path, "another-model")).grade(request(crit_neg())))
    assert other.error == NOT_IN_CACHE


def test_replay_needs_an_existing_cache(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        ReplayJudge(tmp_path / "missing.sqlite", "m")
    bad = tmp_path / "bad.sqlite"
    sqlite3.connect(bad).execute("CREATE TABLE other (x)").connection.commit()
    with pytest.raises(UserError, match="not a verdict cache"):
        ReplayJudge(bad, "m")


def test_routing_keeps_criterion_order_and_dispatches_by_kind():
    b = ScriptedBackend(lambda p: met("[5]" in p))
    judge = RoutingJudge(LLMJudge(b, **FAST))
    crits = [prog("p1"), crit_pos("l1"), prog("p2", "judge_test_explodes"), crit_neg("l2")]
    verdicts = run_sync(judge.grade(request(*crits, response="No commas here.")))
    assert [v.criterion_id for v in verdicts] == ["p1", "l1", "p2", "l2"]
    p1, l1, p2, l2 = verdicts
    assert p1.met is True and p1.judge == "verifier:no_commas"
    assert l1.met is True and l2.met is False and l1.judge == "scripted-judge"
    assert p2.ungraded and "verifier bug" in p2.error and p2.judge == "verifier:judge_test_explodes"
    assert b.calls == 2  # programmatic criteria never reach the model
    run_sync(judge.grade(request(prog("p3"), response="a, b")))
    assert b.calls == 2


def test_verifier_false_is_graded_false():
    [v] = run_sync(RoutingJudge(None).grade(request(prog(), response="one, two")))
    assert v.met is False and not v.ungraded


def test_build_judge_programmatic_leaves_llm_criteria_ungraded():
    judge = build_judge(JudgeConfig(backend="programmatic"))
    p, lj = grade_many(judge, [request(prog(), crit_pos(), response="fine")])[0]
    assert p.met is True and lj.ungraded and "no model judge" in lj.error


def test_build_judge_replay_and_errors(tmp_path):
    with pytest.raises(UserError, match="needs 'cache'"):
        build_judge(JudgeConfig(backend="replay"))
    VerdictCache(tmp_path / "v.sqlite").close()
    judge = build_judge(JudgeConfig(backend="replay", cache=tmp_path / "v.sqlite", model="m"))
    [[v]] = grade_many(judge, [request(crit_pos())])
    assert v.error == NOT_IN_CACHE
    with pytest.raises(UserError, match="base_url"):
        build_judge(JudgeConfig(backend="openai"))
    with pytest.raises(UserError, match="NO_SUCH_KEY_VAR"):
        build_judge(JudgeConfig(backend="openai", base_url="http://x/v1", api_key_env="NO_SUCH_KEY_VAR"))


def test_build_judge_mode_picks_its_default_template():
    judge = build_judge(JudgeConfig(backend="openai", base_url="http://127.0.0.1:9/v1", mode="tiered"))
    assert judge.model.templates.primary.name == "tiered"
    judge = build_judge(
        JudgeConfig(backend="openai", base_url="http://127.0.0.1:9/v1", template="official:healthbench")
    )
    assert judge.model.templates.primary.name == "official:healthbench"
    with pytest.raises(UserError, match="mode"):
        build_judge(JudgeConfig(backend="openai", base_url="http://x/v1", mode="batch", template="healthbench"))


def test_grade_many_order_and_progress():
    b = ScriptedBackend(lambda p: met("Drink" in p), delay_s=0.01)
    judge = RoutingJudge(LLMJudge(b, **FAST))
    reqs = [request(crit_pos(), response=r) for r in ("Drink water.", "Rest.", "Drink tea.")]
    seen = []
    out = grade_many(judge, reqs, progress=lambda d, t: seen.append((d, t)))
    assert [vs[0].met for vs in out] == [True, False, True]
    assert seen[-1] == (3, 3) and len(seen) == 3
    close_judge(judge)
