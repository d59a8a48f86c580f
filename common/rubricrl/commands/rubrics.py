"""``rubricrl rubrics generate | update | merge | plan``: generate rubrics at scale, revise a bank, plan a cluster run.

generate  prompts JSONL in, instance (or task) rubrics JSONL out, validated and gated; resumable
          (``rubricrl.rubrics.generate``). Exit 0 when every unit has a rubric (kept or dropped by a gate),
          3 when some failed (listed in the failures file; a re-run retries them), 2 on bad input.
update    the rubric update loop: from a training stage's rollouts.jsonl, retire saturated criteria and
          flag never-passing ones, into a revised bank and a changes file.
merge     merge the shard outputs of a Slurm array run (``slurm/rubrics_generate.sbatch``).
plan      jobs and GPU-hours for N rubrics from a measured run's tokens per rubric.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from rubricrl.cluster.site import load_site
from rubricrl.cluster.submit import site_env
from rubricrl.commands.common import accept_trailing_overrides, parse_overrides
from rubricrl.configs import config_path
from rubricrl.errors import UserError
from rubricrl.jsonl import write_atomic
from rubricrl.rubrics.generate import generate_rubrics, load_generate_config, side_paths
from rubricrl.rubrics.generate.plan import build_rubric_plan
from rubricrl.rubrics.generate.shards import merge_shards
from rubricrl.rubrics.generate.units import parse_shard
from rubricrl.rubrics.generate.update import update_bank

EXIT_FAILED = 3


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "rubrics",
        help="generate rubrics from prompts (gated, resumable), revise a bank from pass rates, plan a cluster run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="rubrics_command", metavar="ACTION")
    g = sub.add_parser("generate", help="generate, validate and gate rubrics for a prompts JSONL (resumable)")
    g.add_argument("--prompts", type=Path, required=True, help="prompts JSONL ({id|prompt_id, prompt, ...})")
    g.add_argument(
        "--config",
        default="smollm2-vllm",
        help="generation YAML, or a shipped name (configs/rubrics/: smollm2-vllm); see GenerateConfig",
    )
    g.add_argument("--out", type=Path, required=True, help="rubric JSONL to write or resume (side files beside it)")
    g.add_argument("--responses", type=Path, help="responses JSONL for the discrimination gate (instead of sampling)")
    g.add_argument("--limit", type=int, default=None, help="only the first N units")
    g.add_argument("--shard", default=None, metavar="I/N", help="only shard I of N (units by a hash of their id)")
    g.add_argument("--no-progress", action="store_true", help="no progress display")
    g.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="override a config key, e.g. gates.discrimination.k=8"
    )
    accept_trailing_overrides(g)
    u = sub.add_parser("update", help="retire saturated and flag never-passing criteria from a stage's pass rates")
    u.add_argument("--bank", nargs="+", required=True, help="the rubric files the stage trained on")
    u.add_argument("--rollouts", type=Path, required=True, help="the stage's rollouts.jsonl")
    u.add_argument("--out", type=Path, required=True, help="revised bank JSONL (and <stem>.changes.jsonl)")
    u.add_argument("--saturated", type=float, default=0.95, help="pass rate at or above which a criterion saturated")
    u.add_argument("--last-steps", type=int, default=5, help="steps over which saturation must hold")
    u.add_argument("--min-samples", type=int, default=8, help="graded values needed before deciding")
    m = sub.add_parser("merge", help="merge shard outputs of an array run into one rubric file")
    m.add_argument("shards", nargs="+", type=Path, help="the shards' rubric JSONL files")
    m.add_argument("--out", type=Path, required=True, help="merged rubric JSONL")
    pl = sub.add_parser("plan", help="jobs and GPU-hours for N rubrics from measured tokens per rubric")
    pl.add_argument("--n", type=int, required=True, help="rubrics to generate")
    pl.add_argument("--summary", type=Path, help="a run's <out>.summary.json (default: the recorded demo figures)")
    pl.add_argument("--replicas", type=int, default=4, help="judge/generator server replicas")
    pl.add_argument("--gpus-per-replica", type=int, default=1, help="GPUs each replica uses (tensor parallel)")
    pl.add_argument("--shards", type=int, default=None, help="generation array tasks (default 4 per replica)")
    pl.add_argument("--tokens-per-s-per-gpu", type=float, default=None, help="your server's measured throughput")
    pl.add_argument("--json", action="store_true", help="print the plan as JSON")
    pl.add_argument("--prompts", default="PROMPTS.jsonl", help="prompts file shown in the sbatch lines")
    pl.add_argument("--config", default="CONFIG.yaml", help="generation config shown in the sbatch lines")
    pl.add_argument("--out-dir", default="runs/rubrics", help="output folder shown in the sbatch lines")
    pl.add_argument("--judge-model", default="Qwen/Qwen3-30B-A3B", help="model the judge replicas serve")
    pl.add_argument(
        "--site",
        type=Path,
        help="site file (slurm/site.yaml): write its settings to OUT_DIR/slurm/site.env for the sbatch lines",
    )
    return p


def _generate(args: argparse.Namespace) -> int:
    cfg = load_generate_config(config_path("rubrics", args.config), parse_overrides(args.overrides, "override") or None)
    shard = parse_shard(args.shard) if args.shard else None
    s = generate_rubrics(
        args.prompts,
        cfg,
        args.out,
        responses=args.responses,
        limit=args.limit,
        shard=shard,
        show_progress=not args.no_progress,
    )
    dropped = ", ".join(f"{k} {v}" for k, v in s["dropped"].items()) or "none"
    print(
        f"rubrics: {s['kept']} kept, dropped {dropped}, {s['failed']} failed, {s['pending']} not done "
        f"-> {args.out} (summary {side_paths(args.out)['summary_md']})",
        file=sys.stderr,
    )
    return EXIT_FAILED if s["failed"] else 0


def _update(args: argparse.Namespace) -> int:
    changes = update_bank(
        args.bank,
        args.rollouts,
        args.out,
        saturated=args.saturated,
        last_steps=args.last_steps,
        min_samples=args.min_samples,
    )
    for c in changes:
        print(f"{c.action:8} {c.rubric_id}/{c.criterion_id}: {c.reason}")
    print(f"rubrics update: {len(changes)} criteria changed -> {args.out}", file=sys.stderr)
    return 0


def _merge(args: argparse.Namespace) -> int:
    s = merge_shards(list(args.shards), args.out)
    print(f"merged {len(args.shards)} shards: {s['kept']} rubrics, {s['failed']} failed -> {args.out}", file=sys.stderr)
    return EXIT_FAILED if s["failed"] else 0


def _plan(args: argparse.Namespace) -> int:
    plan = build_rubric_plan(
        args.n,
        summary=args.summary,
        replicas=args.replicas,
        gpus_per_replica=args.gpus_per_replica,
        shards=args.shards,
        tokens_per_s_per_gpu=args.tokens_per_s_per_gpu,
    )
    lines = plan.commands(args.prompts, args.config, args.out_dir, args.judge_model)
    if args.site is not None:
        env_file = write_site_env(args.site, Path(args.out_dir) / "slurm" / "site.env")
        lines = [f"SITE_ENV={env_file}", *lines]
    if args.json:
        print(json.dumps({**plan.to_json(), "sbatch": lines}, indent=1))
    else:
        print(plan.text() + "\n\nsbatch lines (SITE_ENV: the site settings, see slurm/README.md):\n" + "\n".join(lines))
    return 0


def write_site_env(site: Path, path: Path) -> Path:
    """The site's settings as the job scripts source them (``rubricrl.cluster.submit.site_env``).

    Raises:
        UserError: ``path`` exists with other content (nothing is overwritten).
    """
    text = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in site_env(load_site(site)).items())
    if path.exists() and path.read_text(encoding="utf-8") != text:
        raise UserError(
            "exists with other settings; not overwritten (remove it or choose another --out-dir)", path=str(path)
        )
    write_atomic(path, [text])
    return path


def run(args: argparse.Namespace) -> int:
    actions = {"generate": _generate, "update": _update, "merge": _merge, "plan": _plan}
    if args.rubrics_command not in actions:
        raise UserError("rubricrl rubrics needs an action: generate, update, merge or plan (see --help)")
    return actions[args.rubrics_command](args)
