"""Real TRL GRPO (tiny random Qwen3): a stage whose rewards never vary fails at its end, before final/,
and a rerun that resumes from the last checkpoint takes the earlier steps back and fails the same way."""

from __future__ import annotations

import json

import pytest

from rubricrl.config import compose_experiment
from rubricrl.reward.health import RewardHealth, RewardHealthError
from rubricrl.train.trl_adapter import reward_health, train_grpo, write_health

pytestmark = pytest.mark.slow


def test_flat_rewards_fail_the_stage_at_its_end_and_again_after_a_resume(tmp_path):
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
    stage = tmp_path / "t" / "stage1_rl"
    stage.mkdir(parents=True)
    rows = [{"prompt": [{"role": "user", "content": f"Say {i}."}]} for i in range(4)]

    def run(health: RewardHealth) -> None:
        def flat(prompts, completions, **kw):  # the same reward for every answer: zero advantage
            health.observe_step(kw["trainer_state"].global_step + 1, len(completions), 0, [0.5] * len(completions))
            write_health(stage / "reward_health.json", health)
            return [0.5] * len(completions)

        train_grpo(cfg, cfg.grpo, rows, [flat], stage, "t-stage1", health=health)

    first = reward_health(cfg, cfg.grpo, "stage1_rl", "programmatic verifiers")
    with pytest.raises(RewardHealthError, match="0 of 2 steps had rewards that differ"):
        run(first)
    assert not (stage / "final").exists()
    assert (stage / "checkpoints" / "checkpoint-2").is_dir() and (stage / "log_history.jsonl").is_file()
    assert json.loads((stage / "reward_health.json").read_text())["ok"] is False

    again = reward_health(cfg, cfg.grpo, "stage1_rl", "programmatic verifiers")
    with pytest.raises(RewardHealthError, match="0 of 2 steps"):  # resumed at step 2: no step re-run, both restored
        run(again)
