"""``rubricrl nemo-config``: NeMo RL configs (generate, check, estimate) and the in-container driver.

rubricrl nemo-config generate                 # write replications/*/nemo_rl/*.yaml from scale=paper
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

from rubricrl.errors import Problems, UserError


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
    from rubricrl.config import repo_root

    return arg or repo_root()


def run(args: argparse.Namespace) -> int:
    return {"generate": _generate, "check": _check, "estimate": _estimate, "train": _train}[args.action](args)


def _generate(args: argparse.Namespace) -> int:
    from rubricrl.cluster.nemo_rl import generate

    out = generate(_root(args.root), args.paper)
    if not out:
        raise UserError("no replication config found to generate from (replications/<paper>/configs/<paper>.yaml)")
    for path, text in out.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        print(f"wrote {path}")
    return 0


def drift(root: Path) -> list[str]:
    """Problems: committed configs that differ from regeneration, are missing, or have no recipe."""
    from rubricrl.cluster.nemo_rl import generate

    want = generate(root)
    problems = []
    for path, text in want.items():
        if not path.exists():
            problems.append(f"{path}: missing; run `rubricrl nemo-config generate`")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(
                f"{path}: differs from what the experiment config generates now (drift); "
                "run `rubricrl nemo-config generate` and review the diff"
            )
    for path in sorted(Path(root).glob("replications/*/nemo_rl/*.yaml")):
        if path not in want:
            problems.append(f"{path}: no recipe generates this file (stale); delete it or add a recipe")
    return problems


def _check(args: argparse.Namespace) -> int:
    from rubricrl.cluster.arithmetic import check_file

    root = _root(args.root)
    problems: list[str] = []
    files = list(args.files)
    if not files:
        problems += drift(root)
        files = sorted(root.glob("replications/*/nemo_rl/*.yaml"))
        if not files:
            raise UserError("no generated configs under replications/*/nemo_rl/; run `rubricrl nemo-config generate`")
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
    from rubricrl.cluster.throughput import estimate_gpu_hours

    hours, basis = estimate_gpu_hours(args.file, steps=args.steps, judge_gpus=args.judge_gpus)
    print(f"{args.file}: {hours:.0f} GPU-hours\n{basis}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from rubricrl.train.nemo_rl_driver import run_grpo

    run_grpo(args.file, args.overrides, args.nemo_rl_root)
    return 0
