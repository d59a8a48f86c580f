"""Stand-in for `rubricrl replicate` in the Slurm script tests: the real stage runner with small stage bodies.

``python tests/cluster/slurm_stage.py PAPER --stage NAME KEY=VALUE...`` composes the real config, takes
the real stage list of PAPER, and runs stage NAME through the real runner (``run_pipeline``: DONE
markers, config hashes, StageInterrupted -> exit 143). Only the bodies are small: training stages (kind
``train``) take ``RR_TEST_STEPS`` steps of ``RR_TEST_STEP_S`` seconds, write ``checkpoint-<step>/`` after
each, stop on SIGTERM through the real ``GracefulStop`` after saving, and resume from the newest
checkpoint; other stages just record which host ran them. Each start appends to ``starts.jsonl``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace

from rubricrl.cluster.plan import stage_kind
from rubricrl.config import compose_experiment
from rubricrl.papers import load_stages
from rubricrl.train.checkpoint import GracefulStop
from rubricrl.train.stages import StageInterrupted, run_pipeline


def _train(ctx):
    steps, step_s = int(os.environ.get("RR_TEST_STEPS", "6")), float(os.environ.get("RR_TEST_STEP_S", "1"))
    done = sorted(int(p.name.split("-")[1]) for p in ctx.dir.glob("checkpoint-*") if (p / "state.json").is_file())
    start = done[-1] if done else 0
    with open(ctx.dir / "starts.jsonl", "a") as f:
        f.write(
            json.dumps(
                {
                    "job": os.environ.get("SLURM_JOB_ID"),
                    "restart": os.environ.get("SLURM_RESTART_COUNT", "0"),
                    "resumed_from": start,
                }
            )
            + "\n"
        )
    with GracefulStop() as stop:
        for step in range(start + 1, steps + 1):
            time.sleep(step_s)
            ck = ctx.dir / f"checkpoint-{step}"
            ck.mkdir(exist_ok=True)
            (ck / "state.json").write_text(json.dumps({"step": step}))
            if stop.requested is not None:
                raise StageInterrupted(f"signal {stop.requested} at step {step}; checkpoint {ck}")
    return {"steps": steps, "resumed_from": start}


def _other(ctx):
    return {"host": os.uname().nodename, "job": os.environ.get("SLURM_JOB_ID")}


def main(argv: list[str]) -> int:
    paper, flag, stage, *overrides = argv
    assert flag == "--stage", argv
    cfg = compose_experiment(paper, overrides)
    stages = [replace(s, fn=_train if stage_kind(s.name) == "train" else _other) for s in load_stages(paper, cfg)]
    try:
        run_pipeline(stages, cfg, only=stage)
    except StageInterrupted as e:
        print(f"stopped: {e}", file=sys.stderr)
        return StageInterrupted.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
