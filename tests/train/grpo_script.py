"""Subprocess entry for the checkpoint and MoE tests: a few real GRPO steps with a programmatic reward.

Usage: python grpo_script.py OUT_DIR MODEL MAX_STEPS [override ...]
Exit codes: 0 finished, 128+signal when stopped by SIGTERM/SIGINT after a checkpoint.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> int:
    from rubricrl.config import compose_experiment
    from rubricrl.judge import JudgeConfig, build_judge
    from rubricrl.rubrics.loader import load_rubrics
    from rubricrl.train.rewards import RubricScorer, programmatic_only
    from rubricrl.train.stages import StageInterrupted
    from rubricrl.train.trl_adapter import RubricRewardFunc, train_grpo

    out, model, steps, *extra = sys.argv[1:]
    repo = Path(__file__).resolve().parents[2]
    cfg = compose_experiment(
        "rubicon",
        [
            f"run.root={out}",
            "run.name=t",
            f"policy.name={model}",
            f"grpo.max_steps={steps}",
            "grpo.max_completion_length=8",
            "grpo.save_steps=1000",
            "grpo.warmup_steps=0",
            *extra,
        ],
    )
    ids = ["if-no-commas", "if-all-lowercase"]
    rubrics = {
        r.id: programmatic_only(r)
        for r in load_rubrics([repo / "rubric_banks/stage1_instruction_following"])
        if r.id in ids
    }
    rows = [
        {
            "prompt": [{"role": "user", "content": f"Describe item {i}. {rubrics[ids[i % 2]].instruction}"}],
            "rubric_id": ids[i % 2],
        }
        for i in range(8)
    ]
    stage = Path(out) / "t" / "stage"
    stage.mkdir(parents=True, exist_ok=True)
    fn = RubricRewardFunc(
        RubricScorer(rubrics, build_judge(JudgeConfig(backend="programmatic"))), rollouts_path=stage / "rollouts.jsonl"
    )
    try:
        res = train_grpo(cfg, cfg.grpo, rows, [fn], stage, "t-stage")
    except StageInterrupted as e:
        print(f"STOPPED {e}", flush=True)
        return e.exit_code
    print(f"FINISHED global_step={res['global_step']} resumed_from={res['resumed_from']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
