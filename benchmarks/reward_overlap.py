"""Reward share of a tiny Rubicon stage-2 GRPO step on TRL: synchronous vs async rubric reward function.

Builds Rubicon's tiny stage-2 data (the pipeline's own data stage, in a scratch folder), starts the
stage's CPU vLLM judge (``cfg.server``), and trains the same few GRPO steps twice from the base policy
with the stage-2 rubrics and the defense veto: once with :class:`RubricRewardFunc` (grading on the
judge's background loop) and once with :class:`AsyncRubricRewardFunc` (TRL awaits it on its own loop).
Prints, for each, the mean step time and its split (``timing/*`` from ``rubricrl.train.step_timing``):
generation, reward (judge queue wait and compute summed over calls), train, and the reward share.

    .venv/bin/python benchmarks/reward_overlap.py --steps 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=3, help="GRPO steps per path")
    p.add_argument("--prompts", type=int, default=8, help="stage-2 train prompts used")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    p.add_argument("overrides", nargs="*", help="more Hydra overrides (e.g. grpo.max_completion_length=32)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from judge_throughput import machine

    from replications.rubicon.common import judge_for, load_rubric_file, read_rows
    from replications.rubicon.stages import stage_data, stages
    from rubricrl.config import compose_experiment, resolve_path
    from rubricrl.rubrics.loader import load_rubrics
    from rubricrl.train.rewards import RubricScorer, programmatic_only
    from rubricrl.train.stages import StageContext
    from rubricrl.train.trl_adapter import AsyncRubricRewardFunc, RubricRewardFunc, train_grpo

    where = machine()
    root = Path(tempfile.mkdtemp(prefix="rubricrl-overlap-"))
    cfg = compose_experiment(
        "rubicon", [f"run.root={root}", "run.name=overlap", "wandb.mode=disabled", *args.overrides]
    )
    run_dir = root / "overlap"
    data_stage = next(s for s in stages(cfg) if s.name == "data")
    ctx = StageContext(cfg=cfg, run_dir=run_dir, dir=run_dir / "data", stage=data_stage)
    ctx.dir.mkdir(parents=True)
    stage_data(ctx)
    rows = read_rows(ctx.dir / "stage2_train.jsonl")[: args.prompts]
    rubrics = load_rubric_file(ctx.dir / "rubrics.json")
    h = cfg.section("rubicon").hacking  # the defense rubric the hacking stage hands to stage 2
    defense = {r.id: r for r in load_rubrics([resolve_path(h.defense_bank)])}[h.defense_rubric]
    if h.defense_programmatic_only:
        defense = programmatic_only(defense)
    settings = cfg.grpo.merged(cfg.section("rubicon").stage2.grpo).merged(
        {"max_steps": args.steps, "save_steps": args.steps}
    )
    results = {}
    with judge_for(cfg, True, run_dir) as judge:
        for name, cls in (("sync", RubricRewardFunc), ("async", AsyncRubricRewardFunc)):
            print(f"training {args.steps} steps with the {name} reward function ...", file=sys.stderr, flush=True)
            out_dir = run_dir / f"stage2_{name}"
            out_dir.mkdir()
            fn = cls(RubricScorer(rubrics, judge, defense))
            judge.reset_stats()
            train_grpo(cfg, settings, rows, [fn], out_dir, f"overlap-{name}")
            history = [json.loads(x) for x in (out_dir / "log_history.jsonl").read_text().splitlines()]
            steps = [h for h in history if "timing/step_s" in h]
            later = steps[1:] or steps  # the first step pays one-off costs (model load, compilation)
            mean = {k: round(sum(h[k] for h in later) / len(later), 2) for k in later[0] if k.startswith("timing/")}
            mean["timing/reward_share"] = round(mean["timing/reward_s"] / mean["timing/step_s"], 3)
            results[name] = {
                "steps": len(steps),
                "steps_averaged": len(later),
                **mean,
                "judge_calls": judge.stats.calls,
                "ungraded": judge.stats.ungraded,
            }
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: {where}")
    print(
        f"settings: rubicon tiny stage 2 from the base policy ({cfg.policy.name}), {len(rows)} prompts x "
        f"{settings.num_generations} generations per step, max_completion_length {settings.max_completion_length}, "
        f"judge {cfg.judge.model} ({cfg.judge.mode}, concurrency {cfg.judge.concurrency}); means over steps 2.."
    )
    print("path | step s | generation s | reward s | train s | reward share | judge queue wait s | judge compute s")
    for name, r in results.items():
        print(
            " | ".join(
                str(x)
                for x in (
                    name,
                    r["timing/step_s"],
                    r["timing/generation_s"],
                    r["timing/reward_s"],
                    r["timing/train_s"],
                    r["timing/reward_share"],
                    r.get("timing/judge_queue_wait_s"),
                    r.get("timing/judge_compute_s"),
                )
            )
        )
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
