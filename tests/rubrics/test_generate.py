"""Rubric generation with a scripted generator and judge: parsing, retries, failures, gates, resume.

The scripted parts stand in for the models only; the sampler, validation, gates, files and manifests are
the real ones. Generation through a real CPU vLLM server is tests/integration/test_rubrics_generate_served.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rubricrl.errors import UserError
from rubricrl.generation import PolicyConfig, Sampler
from rubricrl.judge.interfaces import Verdict
from rubricrl.rubrics.generate import GenerateConfig, generate_rubrics, side_paths
from rubricrl.rubrics.generate.generate import RubricGenerator
from rubricrl.rubrics.generate.schema import Form, answer_schema
from rubricrl.rubrics.loader import validate_paths

GOOD = {
    "criteria": [
        {"text": "Names the lighthouse keeper and gives him a reason to stay.", "points": 5, "critical": False},
        {"text": "The letter in the bottle changes what the keeper decides.", "points": 4, "critical": True},
        {"text": "Ends with a moral spelled out for the reader.", "points": -3, "critical": False},
    ]
}


class ScriptedChat:
    """A chat backend answering from a list (one answer per call, the last one repeated)."""

    model = "scripted-generator"

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    async def complete(self, messages, **sampling):
        self.calls.append((messages, sampling))
        a = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(a, Exception):
            raise a
        return a if isinstance(a, str) else json.dumps(a)


class KeywordJudge:
    """Every criterion is met when the response contains 'good'."""

    name = "keyword-judge"

    def __init__(self):
        self.requests = []

    async def grade(self, request):
        self.requests.append(request)
        met = "good" in request.response
        return [Verdict(c.id, met=(met if not c.negative else not met)) for c in request.criteria]


def prompts_file(tmp_path: Path, n: int = 2, **extra) -> Path:
    p = tmp_path / "prompts.jsonl"
    rows = [
        {"id": f"p{i}", "prompt": f"Write a short story number {i} about a lighthouse keeper.", **extra}
        for i in range(n)
    ]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return p


def responses_file(tmp_path: Path, by_id: dict[str, list[str]]) -> Path:
    p = tmp_path / "responses.jsonl"
    lines = [
        json.dumps({"prompt_id": pid if i == 0 else f"{pid}#{i}", "source_id": pid, "response": r})
        for pid, rs in by_id.items()
        for i, r in enumerate(rs)
    ]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def config(**kw) -> GenerateConfig:
    base = {
        "generator": {"backend": "openai", "model": "scripted-generator", "base_url": "http://unused/v1", "retries": 0},
        "attempts": 3,
        "gates": {"discrimination": {"enabled": False}},
    }
    for key, value in kw.items():
        if key == "gates":
            base["gates"] = {**base["gates"], **value}
        else:
            base[key] = value
    return GenerateConfig.model_validate(base)


def run(tmp_path, cfg, answers, judge=None, n=2, responses=None, prompts=None, components_extra=None, **kw):
    chat = ScriptedChat(answers)
    sampler = Sampler(PolicyConfig.model_validate(cfg.generator.model_dump()), backend=chat)
    out = tmp_path / "out" / "rubrics.jsonl"
    summary = generate_rubrics(
        prompts or prompts_file(tmp_path, n),
        cfg,
        out,
        responses=responses,
        show_progress=False,
        components={"generator_sampler": sampler, "judge": judge, **(components_extra or {})},
        **kw,
    )
    return out, summary, chat


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_generated_rubrics_validate_and_carry_provenance(tmp_path):
    out, summary, _ = run(tmp_path, config(), [GOOD])
    stats, problems = validate_paths([out])
    assert problems == [] and stats.rubrics == 2
    r = lines(out)[0]
    assert r["id"] == "p0" and r["scope"] == "instance" and r["aggregation"]["name"] == "points_ratio"
    assert [c["points"] for c in r["criteria"]] == [5, 4, -3]
    assert r["criteria"][1]["critical"] is True
    assert "generator:scripted-generator" in r["tags"] and "prompt:p0" in r["tags"] and "seed:none" in r["tags"]
    assert any(t.startswith("template:instance@") for t in r["tags"])
    assert summary["kept"] == 2 and summary["failed"] == 0


def test_answer_in_prose_and_fences_is_parsed(tmp_path):
    text = "Here is the rubric:\n```json\n" + json.dumps(GOOD) + "\n```\nHope it helps."
    out, summary, _ = run(tmp_path, config(), [text], n=1)
    assert summary["kept"] == 1 and len(lines(out)[0]["criteria"]) == 3


def test_invalid_answers_are_retried_then_recorded_as_failures(tmp_path):
    no_positive = {
        "criteria": [{"text": "Uses far too many adjectives in a row.", "points": -2, "critical": False}] * 2
    }
    out, summary, chat = run(tmp_path, config(attempts=3), ["not json at all", no_positive, {"criteria": []}], n=1)
    assert len(chat.calls) == 3
    assert not out.read_text()
    fails = lines(side_paths(out)["failures"])
    assert len(fails) == 1 and fails[0]["id"] == "p0" and fails[0]["attempts"] == 3
    reasons = fails[0]["reasons"]
    assert "no JSON" in reasons[0] and "positive points" in reasons[1] and "empty" in reasons[2]
    assert summary["failed"] == 1 and summary["kept"] == 0


def test_a_failure_then_success_within_the_budget_keeps_the_rubric(tmp_path):
    out, summary, chat = run(tmp_path, config(attempts=2), ["{}", GOOD], n=1)
    assert len(chat.calls) == 2 and summary["kept"] == 1
    assert lines(side_paths(out)["gates"])[0]["attempts"] == 2


def test_transport_errors_count_as_failed_attempts(tmp_path):
    from rubricrl.judge.backends import TransportError

    out, summary, _ = run(tmp_path, config(attempts=2), [TransportError("connection refused")], n=1)
    fail = lines(side_paths(out)["failures"])[0]
    assert all("generator call failed" in r for r in fail["reasons"]) and len(fail["reasons"]) == 2


def test_transport_failures_are_counted_as_call_failures_in_the_summary(tmp_path):
    from rubricrl.judge.backends import TransportError

    out, summary, _ = run(tmp_path, config(attempts=1), [TransportError("connection refused"), "not json"], n=2)
    assert summary["failed"] == 2 and summary["failed_calls"] == 1  # the unparsable answer is the rubric's failure
    assert "1 of the failures are server call failures" in side_paths(out)["summary_md"].read_text()


class SilentJudge:
    """A judge that never answers: every verdict ungraded (a timed-out or absent server)."""

    name = "silent-judge"

    async def grade(self, request):
        return [Verdict(c.id, met=None, error="timeout") for c in request.criteria]


def test_a_gate_judge_that_cannot_grade_fails_the_unit_and_a_rerun_retries_it(tmp_path):
    responses = responses_file(tmp_path, {"p0": ["a good story", "a dull story", "a good tale"]})
    cfg = config(gates={"discrimination": {"enabled": True, "k": 3, "policy": None}})
    out, summary, _ = run(tmp_path, cfg, [GOOD], judge=SilentJudge(), n=1, responses=responses)
    # not dropped as if the rubric failed to discriminate: the gate measured nothing
    assert summary["dropped"] == {} and summary["failed"] == 1 and summary["failed_calls"] == 1
    fail = lines(side_paths(out)["failures"])[0]
    assert fail["reasons"][-1].startswith("gate call failed: ") and "ungraded" in fail["reasons"][-1]
    assert not side_paths(out)["gates"].exists() or lines(side_paths(out)["gates"]) == []
    # the judge is back: the re-run grades the unit again and keeps its rubric
    out, again, _ = run(tmp_path, cfg, [GOOD], judge=KeywordJudge(), n=1, responses=responses)
    assert again["kept"] == 1 and again["failed"] == 0 and again["failed_calls"] == 0


def test_a_gate_policy_call_failure_fails_the_unit_rather_than_grading_fewer_responses(tmp_path):
    from rubricrl.judge.backends import TransportError

    cfg = config(
        gates={
            "discrimination": {
                "enabled": True,
                "k": 3,
                "policy": {"backend": "openai", "model": "p", "base_url": "http://unused/v1", "retries": 0},
            }
        }
    )
    policy = Sampler(
        PolicyConfig.model_validate(cfg.gates.discrimination.policy.model_dump()),
        backend=ScriptedChat(["a good story", TransportError("connection reset"), "a dull story"]),
    )
    out, summary, _ = run(tmp_path, cfg, [GOOD], judge=KeywordJudge(), n=1, components_extra={"policy_sampler": policy})
    assert summary["failed"] == 1 and summary["failed_calls"] == 1 and summary["kept"] == 0
    assert "1 policy call(s) failed" in lines(side_paths(out)["failures"])[0]["reasons"][-1]


def test_near_duplicates_removed_and_reference_copies_flagged(tmp_path):
    ref = "The keeper reads the letter by lamplight and decides to row out to the wreck at dawn."
    prompts = prompts_file(tmp_path, 1, reference=ref)
    answer = {
        "criteria": [
            {"text": "Names the keeper and gives him a reason to stay.", "points": 5, "critical": False},
            {"text": "Names the keeper and gives him a reason to stay!", "points": 3, "critical": False},
            {
                "text": "Says that he reads the letter by lamplight and decides to row out.",
                "points": 2,
                "critical": False,
            },
        ]
    }
    out, summary, _ = run(tmp_path, config(), [answer], prompts=prompts)
    r = lines(out)[0]
    assert [c["id"] for c in r["criteria"]] == ["g1", "g3"]
    assert "flag:copies_reference" in r["criteria"][1]["tags"]
    gate = lines(side_paths(out)["gates"])[0]
    assert gate["duplicates_removed"][0]["duplicate_of"] == "g1" and gate["reference_copies"] == ["g3"]
    assert summary["criteria"]["duplicates_removed"] == 1 and summary["criteria"]["reference_copies"] == 1


def test_verifier_kept_only_with_valid_args(tmp_path):
    answer = {
        "criteria": [
            {
                "text": "The story stays under 200 words in total.",
                "points": 3,
                "critical": False,
                "verifier": "word_count",
                "args": {"max_words": 200},
            },
            {
                "text": "Includes the word lighthouse somewhere.",
                "points": 2,
                "critical": False,
                "verifier": "keywords_present",
                "args": {"keywords": "lighthouse", "bogus": 1},
            },
            {
                "text": "Gives the keeper a name and an age.",
                "points": 2,
                "critical": False,
                "verifier": "no_such_check",
                "args": {},
            },
        ]
    }
    out, summary, _ = run(tmp_path, config(), [answer], n=1)
    c = lines(out)[0]["criteria"]
    assert c[0]["kind"] == "programmatic" and c[0]["verifier"] == "word_count"
    assert "verifier" not in c[1] and "verifier" not in c[2]
    assert summary["criteria"]["programmatic"] == 1 and summary["criteria"]["verifier_rejected"] == 2
    assert validate_paths([out])[1] == []


def test_discrimination_gate_drops_rubrics_whose_scores_do_not_vary(tmp_path):
    responses = responses_file(
        tmp_path,
        {"p0": ["a good story", "a dull story", "a good tale"], "p1": ["same text", "same text", "same text"]},
    )
    judge = KeywordJudge()
    cfg = config(gates={"discrimination": {"enabled": True, "k": 3, "policy": None}})
    out, summary, _ = run(tmp_path, cfg, [GOOD], judge=judge, responses=responses)
    assert [r["id"] for r in lines(out)] == ["p0"]
    gates = {g["id"]: g for g in lines(side_paths(out)["gates"])}
    assert gates["p1"]["status"] == "dropped" and gates["p1"]["reason"] == "zero_variance"
    assert gates["p1"]["rubric"]["id"] == "p1"
    assert gates["p1"]["discrimination"]["distinct"] == 1  # identical responses graded once
    assert gates["p0"]["discrimination"]["std"] > 0
    assert summary["dropped"] == {"zero_variance": 1} and summary["kept"] == 1
    for key in ("summary_json", "summary_md", "histogram"):
        assert side_paths(out)[key].stat().st_size > 0
    assert "dropped: zero_variance | 1" in side_paths(out)["summary_md"].read_text()


def test_resume_skips_done_units_and_retries_failures(tmp_path):
    prompts = prompts_file(tmp_path, 3)
    cfg = config(attempts=1)
    out, s1, chat1 = run(tmp_path, cfg, [GOOD, "garbage", GOOD], prompts=prompts)
    assert s1["kept"] == 2 and s1["failed"] == 1
    before = out.read_bytes()
    out, s2, chat2 = run(tmp_path, cfg, [GOOD], prompts=prompts)
    assert len(chat2.calls) == 1  # only the failed unit
    assert out.read_bytes().startswith(before) and s2["kept"] == 3 and s2["failed"] == 0
    _, s3, chat3 = run(tmp_path, cfg, [GOOD], prompts=prompts)
    assert chat3.calls == [] and s3["kept"] == 3


def test_an_output_written_by_someone_else_is_refused_untouched(tmp_path):
    out = tmp_path / "out" / "rubrics.jsonl"
    out.parent.mkdir()
    out.write_text('{"id": "mine", "criteria": []}\n')
    with pytest.raises(UserError, match="manifest"):
        run(tmp_path, config(), [GOOD])
    assert out.read_text() == '{"id": "mine", "criteria": []}\n'
    assert not side_paths(out)["summary_json"].exists()


def test_task_granularity_one_rubric_per_task(tmp_path):
    p = tmp_path / "prompts.jsonl"
    rows = [{"id": f"p{i}", "task_id": f"t{i % 2}", "prompt": f"Prompt {i}"} for i in range(4)]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, summary, chat = run(tmp_path, config(granularity="task"), [GOOD], prompts=p)
    got = lines(out)
    assert sorted(r["id"] for r in got) == ["t0", "t1"] and all(r["scope"] == "task" for r in got)
    assert "prompt:p0,p2" in {t for r in got for t in r["tags"]}
    assert "one task: 2 prompts" in chat.calls[0][0][0]["content"]


def test_task_granularity_needs_task_ids(tmp_path):
    with pytest.raises(UserError, match="task id"):
        run(tmp_path, config(granularity="task"), [GOOD])


def test_seed_rubric_criteria_kept_and_form_followed(tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "id: seed-story\ncriteria:\n"
        "  - {id: voice, text: The narration keeps one consistent voice throughout., weight: 2}\n"
    )
    answer = {
        "criteria": [
            {"text": "The letter's writer is revealed by the end.", "weight": 3, "negative": False, "critical": False}
        ]
    }
    cfg = config(seed={"path": str(seed)}, min_criteria=1)
    out, _, chat = run(tmp_path, cfg, [answer], n=1)
    r = lines(out)[0]
    assert [c["id"] for c in r["criteria"]] == ["voice", "g1"] and r["criteria"][1]["weight"] == 3
    assert "seed:seed-story" in r["tags"]
    assert "The narration keeps one consistent voice" in chat.calls[0][0][0]["content"]
    assert validate_paths([out])[1] == []


def test_structured_output_schema_is_sent(tmp_path):
    cfg = config()
    gen = RubricGenerator(cfg, PolicyConfig.model_validate(cfg.generator.model_dump()))
    fmt = gen.sampler.cfg.extra_body["response_format"]
    items = fmt["json_schema"]["schema"]["properties"]["criteria"]
    assert items["minItems"] == cfg.min_criteria and items["maxItems"] == cfg.max_criteria
    assert 0 not in items["items"]["properties"]["points"]["enum"]


def test_tiered_weight_schema():
    s = answer_schema(Form("weight", 3, ()), 1, 4)
    props = s["properties"]["criteria"]["items"]["properties"]
    assert props["tiers"]["minItems"] == 3 and "verifier" not in props and "weight" in props


def test_config_errors_are_user_errors(tmp_path):
    from rubricrl.rubrics.generate import load_generate_config

    bad = tmp_path / "g.yaml"
    bad.write_text("granularity: instance\nscorin: points\n")
    with pytest.raises(UserError, match="scorin"):
        load_generate_config(bad)


def test_label_like_criteria_are_invalid_and_retried(tmp_path):
    labels = {
        "criteria": [
            {"text": "True/False", "points": 5, "critical": False},
            {"text": "1.0.1.2.2.2.2.2", "points": 3, "critical": False},
        ]
    }
    out, summary, chat = run(tmp_path, config(attempts=2), [labels, GOOD], n=1)
    assert len(chat.calls) == 2 and summary["kept"] == 1


def test_copies_of_the_templates_example_are_removed_and_retried(tmp_path):
    from rubricrl.rubrics.generate.schema import EXAMPLE_TEXTS

    copy = {"criteria": [{"text": t, "points": 3, "critical": False} for t in EXAMPLE_TEXTS]}
    out, summary, chat = run(tmp_path, config(attempts=2), [copy, GOOD], n=1)
    assert len(chat.calls) == 2 and summary["kept"] == 1
    assert EXAMPLE_TEXTS[0] in chat.calls[0][0][0]["content"]
    (tmp_path / "again").mkdir()
    _, summary, _ = run(tmp_path / "again", config(attempts=1), [copy], n=1)
    fail = lines(tmp_path / "again" / "out" / "rubrics.failures.jsonl")[0]
    assert "copied the template's example" in fail["reasons"][0]


def test_a_retry_shows_the_reason_and_after_a_copy_drops_the_example(tmp_path):
    from rubricrl.rubrics.generate.schema import EXAMPLE_TEXTS

    copy = {"criteria": [{"text": t, "points": 3, "critical": False} for t in EXAMPLE_TEXTS]}
    _, summary, chat = run(tmp_path, config(attempts=3), ["no json here", copy, GOOD], n=1)
    prompts = [c[0][0]["content"] for c in chat.calls]
    assert "Your previous answer" not in prompts[0] and EXAMPLE_TEXTS[0] in prompts[0]
    assert "It was rejected: no JSON" in prompts[1] and EXAMPLE_TEXTS[0] in prompts[1]
    assert "copied the template's example" in prompts[2] and EXAMPLE_TEXTS[0] not in prompts[2].split("# Output")[1]
    assert summary["kept"] == 1


def test_criteria_echoing_the_prompts_own_text_are_removed(tmp_path):
    echo = {
        "criteria": [
            {
                "text": "<one sentence a grader can check in a reply to the request above",
                "points": 2,
                "critical": False,
            },
            {"text": "no JSON object with", "points": 3, "critical": False},
            *GOOD["criteria"],
        ]
    }
    out, summary, chat = run(tmp_path, config(attempts=2), ["no json here", echo], n=1)
    r = lines(out)[0]
    assert [c["text"] for c in r["criteria"]] == [c["text"] for c in GOOD["criteria"]]
    assert lines(side_paths(out)["gates"])[0]["example_copies"] == ["g1", "g2"]
    assert summary["criteria"]["example_copies_removed"] == 2
