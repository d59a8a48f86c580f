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
    [r] = [
        r
        for r in load_rubrics([REPO / "rubric_banks/stage1_instruction_following"])
        if r.id == "mc-lowercase-no-commas"
    ]
    return r


def test_reward_functions_log_the_judges_queue_wait_and_compute(rubric):
    texts = ["rain falls task_quality", "Rain, falls.", "rain, falls natural_integration"]
    for cls in (RubricRewardFunc, AsyncRubricRewardFunc):
        fn = cls(RubricScorer({rubric.id: rubric}, RoutingJudge(WordJudge())))
        logged: dict[str, float] = {}
        kw = dict(
            prompts=["Describe rain."] * 3,
            completions=texts,
            rubric_id=[rubric.id] * 3,
            log_metric=lambda k, v, m=logged: m.__setitem__(k, v),
        )
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
    assert f == {
        "timing/step_s": 4.0,
        "timing/generation_s": 2.0,
        "timing/reward_s": 1.0,
        "timing/train_s": 1.0,
        "timing/reward_share": 0.25,
    }
    assert t.step_figures(1.0)["timing/reward_s"] == 0.0  # buckets reset per step
    s = timing_summary(
        [{"timing/step_s": 4.0, "timing/reward_s": 1.0}, {"timing/step_s": 2.0, "timing/reward_s": 2.0}, {"loss": 1.0}]
    )
    assert s["timing/step_s"] == 3.0 and s["timing/reward_share"] == 0.5 and s["timing/steps"] == 2.0


@pytest.mark.slow
@pytest.mark.parametrize("cls", [RubricRewardFunc, AsyncRubricRewardFunc])
def test_timing_keys_in_the_logged_metrics_of_a_real_trl_run(tmp_path, rubric, cls):
    cfg = compose_experiment(
        "rubicon",
        [
            f"run.root={tmp_path}",
            "run.name=t",
            "policy.name=tiny-qwen3",
            "grpo.max_steps=2",
            "grpo.max_completion_length=4",
            "grpo.save_steps=2",
            "grpo.warmup_steps=0",
            "wandb.mode=disabled",
            "+policy.chat_template_kwargs.enable_thinking=false",
        ],
    )
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


@pytest.mark.parametrize("flag, cls", [(False, RubricRewardFunc), (True, AsyncRubricRewardFunc)])
def test_run_async_reward_picks_the_reward_function_of_a_rubicon_stage(tmp_path, monkeypatch, rubric, flag, cls):
    """``run.async_reward`` reaches the TRL stage: the stage trains with the async reward function."""
    from replications.rubicon import stages as rubicon
    from rubricrl.train import trl_adapter
    from rubricrl.train.stages import StageContext

    cfg = compose_experiment("rubicon", [f"run.root={tmp_path}", "run.name=t", f"run.async_reward={str(flag).lower()}"])
    stage = next(s for s in rubicon.stages(cfg) if s.name == "stage1_rl")
    ctx = StageContext(cfg=cfg, run_dir=tmp_path / "t", dir=tmp_path / "t" / "stage1_rl", stage=stage)
    ctx.dir.mkdir(parents=True)
    seen = {}

    def fake_train(cfg, settings, rows, funcs, out_dir, run_name, init_model=None, **kw):
        seen["funcs"] = funcs
        (out_dir / "log_history.jsonl").write_text("")
        (out_dir / "final").mkdir()
        (out_dir / "final" / "model.safetensors").write_bytes(b"x")
        return {"final_model": str(out_dir / "final")}

    monkeypatch.setattr(trl_adapter, "train_grpo", fake_train)
    rows = [{"prompt": [{"role": "user", "content": "Say hi."}], "rubric_id": rubric.id, "id": "p0"}]
    rubicon._train_stage(ctx, rows, {rubric.id: rubric}, False, None, rubicon.rub(cfg).stage1, None)
    assert type(seen["funcs"][0]) is cls


def test_nemo_rl_step_timing_from_its_timer_and_the_grading_time():
    from rubricrl.train.step_timing import nemo_rl_step_timing

    sync = nemo_rl_step_timing(
        {"total_step_time": 100.0, "generation": 70.0, "policy_training": 20.0},
        30.0,
        {"queue_wait_s": 5.0, "latency_sum_s": 120.0},
    )
    assert sync == {
        "step_s": 100.0,
        "generation_s": 40.0,
        "reward_s": 30.0,
        "train_s": 30.0,
        "reward_share": 0.3,
        "reward_overlapped": 0.0,
        "judge_queue_wait_s": 5.0,
        "judge_compute_s": 120.0,
    }
    # async GRPO: the trainer waited 10 s for trajectories generated and graded in the background
    overlap = nemo_rl_step_timing({"total_step_time": 80.0, "exposed_generation": 10.0}, 30.0)
    assert overlap["generation_s"] == 10.0 and overlap["train_s"] == 70.0 and overlap["reward_overlapped"] == 1.0
    assert nemo_rl_step_timing({"generation": 1.0}, 1.0) == {}  # no step total: nothing to split
