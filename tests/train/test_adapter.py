"""TRL adapter: the reward function returns rubricrl.reward's numbers for the same verdicts, logs components."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rubricrl.config import compose_experiment
from rubricrl.errors import UserError
from rubricrl.judge import RoutingJudge
from rubricrl.judge.interfaces import GradingRequest, Verdict
from rubricrl.reward import rubric_reward
from rubricrl.rubrics.loader import load_rubrics
from rubricrl.train.rewards import RubricScorer
from rubricrl.train.trl_adapter import RubricRewardFunc, grpo_config


class WordJudge:
    """Unit-test judge for llm criteria: met when the criterion id appears in the response."""

    name = "word"
    mode = "binary"

    def __init__(self):
        from rubricrl.judge.llm import JudgeStats

        self.stats = JudgeStats()

    def cache_key(self, request, criterion):  # pragma: no cover - no cache in these tests
        return criterion.id

    async def grade(self, request: GradingRequest) -> list[Verdict]:
        return [Verdict(c.id, met=c.id in request.response, judge=self.name) for c in request.criteria]

    async def aclose(self):
        pass


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def banks():
    return {
        r.id: r
        for r in load_rubrics([REPO / "rubric_banks/stage1_instruction_following", REPO / "rubric_banks/defense"])
    }


def _direct(judge, rubric, conv, text):
    from rubricrl.judge import grade_many

    [v] = grade_many(judge, [GradingRequest(conversation=conv, response=text, criteria=rubric.criteria)])
    return rubric_reward(rubric, v)


def test_reward_equals_rubric_reward_for_the_same_verdicts(banks, tmp_path):
    judge = RoutingJudge(WordJudge())
    rubric = banks["mc-lowercase-no-commas"]
    fn = RubricRewardFunc(RubricScorer({rubric.id: rubric}, judge), rollouts_path=tmp_path / "r.jsonl")
    prompts = [[{"role": "user", "content": "Describe rain. " + rubric.instruction}]] * 3
    texts = ["rain falls soft and grey task_quality natural_integration", "Rain, falls.", "rain falls task_quality"]
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    logged: dict[str, float] = {}
    got = fn(
        prompts=prompts,
        completions=completions,
        rubric_id=[rubric.id] * 3,
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    want = [_direct(judge, rubric, prompts[0], t).reward for t in texts]
    assert got == pytest.approx(want)
    assert len(set(got)) > 1  # the responses differ, so must the rewards
    assert logged[f"reward/{rubric.category}"] == pytest.approx(sum(want) / 3)
    assert logged["criteria/mc-lowercase-no-commas/lowercase"] in (pytest.approx(2 / 3),) or any(
        k.startswith("criteria/mc-lowercase-no-commas/") for k in logged
    )
    assert logged["veto_rate"] == 0.0 and "judge/latency_s" in logged and "response/words" in logged
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in rows] == pytest.approx(got) and rows[1]["completion"] == "Rain, falls."


def test_defense_rubric_vetoes_to_its_floor_and_is_logged(banks):
    judge = RoutingJudge(WordJudge())
    task, defense = banks["if-no-commas"], banks["defense-reward-hacking"]
    fn = RubricRewardFunc(RubricScorer({task.id: task}, judge, defense))
    texts = [
        "What a great question! rain falls task_quality answers_user",  # sycophancy: vetoed
        "rain falls task_quality answers_user",
    ]
    logged: dict[str, float] = {}
    got = fn(
        prompts=["Describe rain."] * 2,
        completions=texts,
        rubric_id=[task.id] * 2,
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    assert got[0] == defense.aggregation.veto.floor
    assert got[1] == pytest.approx(
        _direct(judge, task, [{"role": "user", "content": "Describe rain."}], texts[1]).reward
    )
    assert got[1] > got[0]
    assert logged["defense/veto_rate"] == 0.5 and logged["veto_rate"] == 0.5
    assert logged["defense_criteria/prefatory_sycophancy"] == 0.5


def test_missing_rubric_column_is_a_clear_error(banks):
    fn = RubricRewardFunc(RubricScorer({}, RoutingJudge(None)))
    with pytest.raises(KeyError, match="rubric_id"):
        fn(prompts=["x"], completions=["y"])


def test_grpo_settings_map_onto_trl_grpoconfig(tmp_path):
    cfg = compose_experiment("rubicon", ["grpo.max_steps=3", "+grpo.extra.log_completions=false"])
    args = grpo_config(cfg.grpo, tmp_path, seed=5, report_to=[], run_name="t")
    assert (args.beta, args.epsilon, args.epsilon_high, args.loss_type) == (0.0, 0.2, 0.28, "dapo")
    assert args.max_steps == 3 and args.num_generations == 4 and args.seed == 5
    assert (
        getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type) == "constant_with_warmup"
        and args.warmup_steps == 2
    )
    assert args.temperature == 0.6 and args.max_completion_length == 48 and args.gradient_checkpointing is False
    bad = cfg.grpo.merged({"extra": {"not_a_trl_field": 1}})
    with pytest.raises(UserError, match="not_a_trl_field"):
        grpo_config(bad, tmp_path, seed=0, report_to=[], run_name="t")


def test_gradient_checkpointing_reaches_trl_under_either_transformers_name(tmp_path):
    import dataclasses
    import warnings

    from transformers import TrainingArguments

    cfg = compose_experiment("rubicon", ["scale=single_gpu", "grpo.bf16=false"])
    assert cfg.grpo.gradient_checkpointing is True
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the renamed field must not be set by its old name
        args = grpo_config(cfg.grpo, tmp_path, seed=0, report_to=[], run_name="t")
    assert args.gradient_checkpointing is True
    if "activation_checkpointing" in {f.name for f in dataclasses.fields(TrainingArguments)}:
        assert args.activation_checkpointing is True


@pytest.mark.parametrize("key", ["gradient_checkpointing", "activation_checkpointing", "max_steps"])
def test_extra_cannot_shadow_a_named_setting(tmp_path, key):
    cfg = compose_experiment("rubicon", [])
    bad = cfg.grpo.merged({"extra": {key: True}})
    with pytest.raises(UserError, match=f"grpo.extra: {key} is set through named grpo keys"):
        grpo_config(bad, tmp_path, seed=0, report_to=[], run_name="t")


class SilentJudge(WordJudge):
    """A model judge that never answers in time: every llm verdict ungraded, counted as timeouts."""

    name = "silent"

    async def grade(self, request: GradingRequest) -> list[Verdict]:
        self.stats.calls += len(request.criteria)
        self.stats.transport_errors += len(request.criteria)
        self.stats.ungraded += len(request.criteria)
        return [Verdict(c.id, judge=self.name, error="transport: timeout after 0.1s") for c in request.criteria]


def test_a_judge_that_grades_nothing_stops_the_step_with_a_health_error(banks, tmp_path):
    from rubricrl.reward.health import RewardHealth, RewardHealthError

    task = banks["if-no-commas"]
    health = RewardHealth(judge="silent at http://127.0.0.1:9/v1", stage="stage2_rl", group_size=2)
    fn = RubricRewardFunc(
        RubricScorer({task.id: task}, RoutingJudge(SilentJudge())),
        health=health,
        health_path=tmp_path / "reward_health.json",
    )
    with pytest.raises(RewardHealthError) as e:
        fn(prompts=["Describe rain."] * 2, completions=["rain falls", "rain, falls"], rubric_id=[task.id] * 2)
    # 2 responses x 2 llm criteria, all ungraded; the programmatic no_commas verdicts are not counted
    assert "step 1: 4 of 4 verdicts ungraded (100%)" in str(e.value) and "transport_errors 4" in str(e.value)
    written = json.loads((tmp_path / "reward_health.json").read_text())
    assert written["ok"] is False and written["steps"][0]["n_ungraded"] == 4


def test_a_programmatic_stage_counts_every_verdict_and_feeds_the_variance_check(banks):
    from rubricrl.reward.health import RewardHealth, RewardHealthError
    from rubricrl.train.rewards import programmatic_only

    task = programmatic_only(banks["mc-lowercase-no-commas"])
    health = RewardHealth(group_size=2)
    fn = RubricRewardFunc(RubricScorer({task.id: task}, RoutingJudge(None)), health=health)
    fn(prompts=["x"] * 2, completions=["rain falls", "rain falls"], rubric_id=[task.id] * 2)
    assert health.steps[1].n_verdicts == 4 and not health.steps[1].varied
    with pytest.raises(RewardHealthError, match="0 of 1 steps had rewards that differ"):
        health.finish()
    fn(prompts=["x"] * 2, completions=["rain falls", "Rain, Falls"], rubric_id=[task.id] * 2)  # same step 1
    assert health.finish()["steps_with_reward_variance"] == 1


def test_judge_label_names_model_url_and_knobs():
    from rubricrl.judge import JudgeConfig, build_judge, close_judge
    from rubricrl.train.trl_adapter import judge_label

    assert judge_label(RoutingJudge(None)) == "programmatic verifiers"
    j = build_judge(
        JudgeConfig(
            backend="openai", model="m", base_url="http://127.0.0.1:9/v1", timeout_s=5, concurrency=2, retries=1
        )
    )
    try:
        assert judge_label(j) == "m at http://127.0.0.1:9/v1 (timeout_s 5.0, concurrency 2, retries 1)"
    finally:
        close_judge(j)
