"""Reward time per step on TRL: the timing keys reach log_history and the stage metrics, for the
synchronous and the async rubric reward function (real TRL GRPO on a tiny random Qwen3)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from rubricrl.config import compose_experiment
from rubricrl.judge import RoutingJudge
from rubricrl.rubrics.loader import load_rubrics
from rubricrl.train.rewards import RubricScorer
from rubricrl.train.step_timing import JUDGE_TIMING_KEYS, TIMING_KEYS, StepTimer, timing_summary
from rubricrl.train.trl_adapter import AsyncRubricRewardFunc, RubricRewardFunc, train_grpo

from .test_adapter import WordJudge

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rubric():
    [r] = [r for r in load_rubrics([REPO / "rubric_banks/stage1_instruction_following"])
           if r.id == "mc-lowercase-no-commas"]
    return r


def test_reward_functions_log_the_judges_queue_wait_and_compute(rubric):
    texts = ["rain falls task_quality", "Rain, falls.", "rain, falls natural_integration"]
    for cls in (RubricRewardFunc, AsyncRubricRewardFunc):
        fn = cls(RubricScorer({rubric.id: rubric}, RoutingJudge(WordJudge())))
        logged: dict[str, float] = {}
        kw = dict(prompts=["Describe rain."] * 3, completions=texts, rubric_id=[rubric.id] * 3,
                  log_metric=lambda k, v: logged.__setitem__(k, v))
        got = asyncio.run(fn(**kw)) if cls is AsyncRubricRewardFunc else fn(**kw)
        assert set(JUDGE_TIMING_KEYS) <= set(logged), cls
        assert len(got) == 3 and len(set(got)) > 1


def test_async_reward_function_gives_the_sync_rewards(rubric):
    texts = ["rain falls task_quality", "Rain, falls.", "rain, falls natural_integration"]
    scorer = RubricScorer({rubric.id: rubric}, RoutingJudge(WordJudge()))
    kw = dict(prompts=["Describe rain."] * 3, completions=texts, rubric_id=[rubric.id] * 3)
    assert asyncio.run(AsyncRubricRewardFunc(scorer)(**kw)) == RubricRewardFunc(scorer)(**kw)


def test_step_figures_split_the_step():
    t = StepTimer()
    t._spent = {"generation": 2.0, "reward": 1.0}
    f = t.step_figures(4.0)
    assert f == {"timing/step_s": 4.0, "timing/generation_s": 2.0, "timing/reward_s": 1.0, "timing/train_s": 1.0,
                 "timing/reward_share": 0.25}
    assert t.step_figures(1.0)["timing/reward_s"] == 0.0  # buckets reset per step
    s = timing_summary([{"timing/step_s": 4.0, "timing/reward_s": 1.0}, {"timing/step_s": 2.0, "timing/reward_s": 2.0},
                        {"loss": 1.0}])
    assert s["timing/step_s"] == 3.0 and s["timing/reward_share"] == 0.5 and s["timing/steps"] == 2.0


@pytest.mark.slow
@pytest.mark.parametrize("cls", [RubricRewardFunc, AsyncRubricRewardFunc])
def test_timing_keys_in_the_logged_metrics_of_a_real_trl_run(tmp_path, rubric, cls):
    cfg = compose_experiment("rubicon", [f"run.root={tmp_path}", "run.name=t", "policy.name=tiny-qwen3",
                                         "grpo.max_steps=2", "grpo.max_completion_length=4", "grpo.save_steps=2",
                                         "grpo.warmup_steps=0", "wandb.mode=disabled",
                                         "+policy.chat_template_kwargs.enable_thinking=false"])
    stage = tmp_path / "t" / "stage2_rl"
    stage.mkdir(parents=True)
    rows = [{"prompt": [{"role": "user", "content": f"Say {i}."}], "rubric_id": rubric.id} for i in range(4)]
    fn = cls(RubricScorer({rubric.id: rubric}, RoutingJudge(WordJudge())))
    out = train_grpo(cfg, cfg.grpo, rows, [fn], stage, "t-stage2")
    history = [json.loads(x) for x in (stage / "log_history.jsonl").read_text().splitlines()]
    steps = [r for r in history if "timing/step_s" in r]
    assert len(steps) == 2
    for r in steps:
        assert set(TIMING_KEYS + JUDGE_TIMING_KEYS) <= set(r)
        assert 0.0 <= r["timing/reward_share"] <= 1.0 and r["timing/train_s"] >= 0.0
        assert r["timing/generation_s"] > 0 and r["timing/reward_s"] > 0
    assert set(TIMING_KEYS) <= set(out["timing"])
