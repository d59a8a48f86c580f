"""``rubricrl replicate <paper> [--stage NAME] [overrides...]``: run a replication pipeline.

Examples::

    rubricrl replicate rubicon                                  # tiny scale, every stage, skip finished ones
    rubricrl replicate rubicon scale=tiny grpo.max_steps=4 run.name=x
    rubricrl replicate rubicon --stage stage1_rl run.name=x     # one stage (predecessors must be done)
    rubricrl replicate rubicon --list-stages
    rubricrl replicate rubicon --show-config scale=paper        # the fully resolved config, nothing run

Pipelines: each ``replications/<paper>/`` exposes ``PAPER`` with ``stages(cfg) -> list[Stage]``
(:mod:`rubricrl.papers`, :mod:`rubricrl.train.stages`). Exit codes: 0 done, 2 bad config / missing predecessor,
143 stopped by SIGTERM/SIGINT after saving a checkpoint (run the same command again to resume).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from rubricrl.commands.common import accept_trailing_overrides
from rubricrl.config import compose_experiment, to_yaml
from rubricrl.errors import UserError
from rubricrl.papers import help_list, load_stages
from rubricrl.train.stages import StageInterrupted, run_pipeline, stage_status


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "replicate",
        help="run a replication pipeline (stages under runs/<run>/<stage>/)",
        description="Compose replications/<paper>/configs with Hydra overrides (key=value) and run the "
        "pipeline's stages; finished stages are skipped, interrupted training resumes.",
    )
    p.add_argument("paper", help=f"replication: {help_list()}")
    p.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides, e.g. scale=tiny grpo.max_steps=4 run.name=x"
    )
    p.add_argument("--stage", metavar="NAME", help="run only this stage (its predecessors must be done)")
    p.add_argument(
        "--force",
        action="store_true",
        help="redo the selected stage (or stages finished under another config); old folders are kept aside",
    )
    p.add_argument("--list-stages", action="store_true", help="list the stages and their status, run nothing")
    p.add_argument("--show-config", action="store_true", help="print the resolved config, run nothing")
    p.add_argument(
        "--cfg",
        choices=("job", "all"),
        metavar="job",
        help="Hydra's spelling of --show-config (`--cfg job`): print the resolved config, run nothing",
    )
    p.add_argument(
        "-m", "--multirun", action="store_true", help="not supported: run one command per value (the error shows how)"
    )
    p.add_argument(
        "--config-dir", metavar="DIR", help="replication config folder (default replications/<paper>/configs)"
    )
    accept_trailing_overrides(p)
    return p


def run(args: argparse.Namespace) -> int:

    # OpenMP threads that spin only briefly (10k iterations) before sleeping when they wait. Measured on
    # 2 cores with SmolLM2 (8 x 48-token generate): sleeping at once (OMP_WAIT_POLICY=PASSIVE) was ~25%
    # slower on an idle machine (4.8 s vs 3.8 s); libgomp's long default spin made generation far slower
    # on a busy one. Must be set before torch loads; a user's OMP_WAIT_POLICY / GOMP_SPINCOUNT wins.
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = "10000"

    if args.multirun:
        sweep = next((o for o in args.overrides if "," in o.split("=", 1)[-1]), "grpo.max_steps=10,20")
        key, values = sweep.split("=", 1)
        raise UserError(
            f"-m/--multirun (Hydra sweeps) is not supported: each run has its own folder and stage "
            f"markers. Run one command per value, e.g.\n  for v in {' '.join(values.split(','))}; do "
            f"rubricrl replicate {args.paper} {key}=$v run.name={args.paper}-{key.split('.')[-1]}-$v; done"
        )
    cfg = compose_experiment(args.paper, args.overrides, Path(args.config_dir) if args.config_dir else None)
    if args.show_config or args.cfg:
        sys.stdout.write(to_yaml(cfg))
        return 0
    stages = load_stages(args.paper, cfg)
    if args.list_stages:
        for s in stages:
            status = stage_status(cfg.run.dir, s.name)
            after = f" (after {', '.join(s.inputs)})" if s.inputs else ""
            print(f"{s.name:14s} {status:8s} {s.description}{after}")
        return 0
    if logging.getLogger().level > logging.INFO:
        logging.getLogger("rubricrl").setLevel(logging.INFO)
    print(f"run {cfg.run.name} ({cfg.run.scale} scale) in {cfg.run.dir}", file=sys.stderr)
    try:
        results = run_pipeline(stages, cfg, only=args.stage, force=args.force)
    except StageInterrupted as e:
        print(f"stopped: {e}. Run the same command again to resume.", file=sys.stderr)
        return StageInterrupted.exit_code
    print(f"done: {', '.join(results)} in {cfg.run.dir}", file=sys.stderr)
    return 0
