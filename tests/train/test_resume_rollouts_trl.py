"""Real TRL GRPO (tiny random Qwen3): a stage resumed from its checkpoint cuts the rows a dead attempt wrote
for the steps it repeats, so no step appears twice in rollouts.jsonl (the hacking stage mines it)."""

from __future__ import annotations

import hashlib
import json

import pytest

from rubricrl.config import compose_experiment
from rubricrl.errors import UserError
from rubricrl.train.trl_adapter import train_grpo

pytestmark = pytest.mark.slow


class _Logged:
    """A reward function that logs one row per scored rollout, with TRL's step (global_step + 1)."""

    def __init__(self, path):
        self.rollouts_path = path

    def __call__(self, prompts, completions, **kw):
        step = kw["trainer_state"].global_step + 1
        with open(self.rollouts_path, "a", encoding="utf-8") as f:
            for i, _ in enumerate(completions):
                f.write(json.dumps({"step": step, "i": i}) + "\n")
        return [float(i % 2) for i in range(len(completions))]


def _cfg(tmp_path, steps):
    return compose_experiment(
        "rubicon",
        [
            f"run.root={tmp_path}",
            "run.name=t",
            "policy.name=tiny-qwen3",
            f"grpo.max_steps={steps}",
            "grpo.max_completion_length=4",
            "grpo.save_steps=2",
            "grpo.warmup_steps=0",
            "wandb.mode=disabled",
            "+policy.chat_template_kwargs.enable_thinking=false",
        ],
    )


def test_resume_cuts_the_dead_attempts_rows(tmp_path):
    stage = tmp_path / "t" / "stage1_rl"
    stage.mkdir(parents=True)
    rows = [{"prompt": [{"role": "user", "content": f"Say {i}."}]} for i in range(4)]
    fn = _Logged(stage / "rollouts.jsonl")
    cfg = _cfg(tmp_path, 2)
    train_grpo(cfg, cfg.grpo, rows, [fn], stage, "t-stage1")
    per_step = sum(1 for _ in open(fn.rollouts_path)) // 2
    # An attempt at steps 3-4 died during step 3, after writing its rows and half a line, before a checkpoint.
    with open(fn.rollouts_path, "a") as f:
        f.write("".join(json.dumps({"step": 3, "i": i}) + "\n" for i in range(per_step)) + '{"step": 3, "i"')
    cfg = _cfg(tmp_path, 4)
    train_grpo(cfg, cfg.grpo, rows, [fn], stage, "t-stage1")  # resumes from checkpoint-2
    steps = [json.loads(x)["step"] for x in open(fn.rollouts_path)]
    assert steps == [1] * per_step + [2] * per_step + [3] * per_step + [4] * per_step


def test_a_file_that_is_not_a_step_log_is_refused_untouched(tmp_path):
    from rubricrl.jsonl import cut_step_records

    f = tmp_path / "rollouts.jsonl"
    f.write_bytes(b'{"step": 1}\nmy notes\n{"step": 2}\n')
    before = hashlib.sha256(f.read_bytes()).hexdigest()
    with pytest.raises(UserError, match="line 2 is not a per-step record"):
        cut_step_records(f, 1)
    assert hashlib.sha256(f.read_bytes()).hexdigest() == before
    f.write_bytes(b'{"step": 1}\n{"step": 2}\n')
    f.chmod(0o644)
    assert cut_step_records(f, 1) == (1, 1) and f.read_bytes() == b'{"step": 1}\n' and f.stat().st_mode & 0o777 == 0o644
