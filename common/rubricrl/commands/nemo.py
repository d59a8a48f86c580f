"""``rubricrl nemo-config``: NeMo RL configs (generate, check, estimate) and the in-container driver.

rubricrl nemo-config generate                 # write replications/*/nemo_rl/*.yaml (rubricrl regenerate: all)
rubricrl nemo-config check                    # drift + arithmetic + memory of every committed config
rubricrl nemo-config check FILE.yaml          # arithmetic + memory of one NeMo RL config
rubricrl nemo-config estimate FILE.yaml       # GPU-hours from NeMo RL's published throughput
rubricrl nemo-config train FILE.yaml [k=v..]  # inside the NeMo RL container: register the rubric
                                              # environment, then run NeMo RL's examples/run_grpo.py
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rubricrl.cluster.arithmetic import check_file
from rubricrl.cluster.throughput import estimate_gpu_hours
from rubricrl.config import repo_root
from rubricrl.errors import Problems, UserError
from rubricrl.pipeline.generated import drift as generated_drift
from rubricrl.pipeline.generated import regenerate
from rubricrl.train.nemo_rl_driver import run_grpo


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "nemo-config",
        help="NeMo RL configs: generate, check, estimate GPU-hours, train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    g = sub.add_parser("generate", help="write replications/*/nemo_rl/*.yaml from the experiment configs")
    g.add_argument("--paper", action="append", help="only this replication (repeatable)")
    g.add_argument("--root", type=Path, default=None, help="repository root (default: the current checkout)")
    c = sub.add_parser("check", help="drift, arithmetic and memory checks")
    c.add_argument("files", nargs="*", type=Path, help="NeMo RL YAMLs (default: every generated one, plus drift)")
    c.add_argument("--root", type=Path, default=None, help="repository root (default: the current checkout)")
    c.add_argument("--gpu-memory-gib", type=float, default=80.0, help="memory of one GPU (default 80, H100)")
    c.add_argument("--headroom", type=float, default=0.10, help="fraction of GPU memory kept free (default 0.1)")
    c.add_argument("-q", "--quiet", action="store_true", help="print failures only")
    e = sub.add_parser("estimate", help="GPU-hours of a config from NeMo RL's published throughput")
    e.add_argument("file", type=Path, help="a NeMo RL config (e.g. replications/<paper>/nemo_rl/*.yaml)")
    e.add_argument("--steps", type=int, default=None, help="GRPO steps (default: grpo.max_num_steps)")
    e.add_argument("--judge-gpus", type=int, default=0, help="GPUs of a separate judge server job")
    t = sub.add_parser("train", help="run NeMo RL GRPO with the rubric environment (inside the container)")
    t.add_argument("file", type=Path, help="a generated NeMo RL config")
    t.add_argument("overrides", nargs=argparse.REMAINDER, help="NeMo RL (Hydra) overrides, key=value")
    t.add_argument(
        "--nemo-rl-root",
        type=Path,
        default=Path(os.environ.get("NEMO_RL_ROOT", "/opt/nemo-rl")),
        help="NeMo RL checkout in the container (default $NEMO_RL_ROOT or /opt/nemo-rl)",
    )
    return p


def _root(arg: Path | None) -> Path:
    return arg or repo_root()


def run(args: argparse.Namespace) -> int:
    return {"generate": _generate, "check": _check, "estimate": _estimate, "train": _train}[args.action](args)


def _generate(args: argparse.Namespace) -> int:
    written = regenerate(_root(args.root), only=NEMO_RL_PATTERN, papers=args.paper)
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} NeMo RL configs written" if written else "every NeMo RL config was up to date")
    return 0


NEMO_RL_PATTERN = "replications/*/nemo_rl/*.yaml"


def drift(root: Path) -> list[str]:
    """Committed NeMo RL configs that differ from regeneration, are missing, or have no recipe (drift, stale)."""

    return [f"{d}; run `rubricrl regenerate` and review the diff" for d in generated_drift(root, only=NEMO_RL_PATTERN)]


def _check(args: argparse.Namespace) -> int:
    root = _root(args.root)
    problems: list[str] = []
    files = list(args.files)
    if not files:
        problems += drift(root)
        files = sorted(root.glob("replications/*/nemo_rl/*.yaml"))
        if not files:
            raise UserError("no generated configs under replications/*/nemo_rl/; run `rubricrl regenerate`")
    for f in files:
        checks = check_file(f, args.gpu_memory_gib, args.headroom)
        bad = [c for c in checks if not c.ok]
        if not args.quiet:
            print(f"{f}: {len(checks) - len(bad)}/{len(checks)} checks pass")
            for c in checks:
                print(f"  {'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
        problems += [f"{f}: {c.name}: {c.detail}" for c in bad]
    if problems:
        raise Problems(problems)
    return 0


def _estimate(args: argparse.Namespace) -> int:
    hours, basis = estimate_gpu_hours(args.file, steps=args.steps, judge_gpus=args.judge_gpus)
    print(f"{args.file}: {hours:.0f} GPU-hours\n{basis}")
    return 0


def _train(args: argparse.Namespace) -> int:
    run_grpo(args.file, args.overrides, args.nemo_rl_root)
    return 0
