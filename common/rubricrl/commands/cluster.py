"""``rubricrl cluster plan|submit|status|check-containers``: the replication pipelines as Slurm jobs.

Examples::

    rubricrl cluster plan rubicon --site slurm/site.yaml scale=paper          # jobs, resources, GPU-hours
    rubricrl cluster submit rubicon --site slurm/site.yaml scale=paper        # sbatch the stage graph
    rubricrl cluster submit rubicon --site slurm/site.yaml --dry-run          # print the sbatch lines
    rubricrl cluster status rubicon --site slurm/site.yaml scale=paper        # stages + Slurm job states
    rubricrl cluster check-containers                                         # containers/*.def structure

Overrides (``KEY=VALUE``) are the same as ``rubricrl replicate``'s; the site file adds the run root and
W&B settings. See slurm/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rubricrl.cluster.apptainer_def import check_def
from rubricrl.cluster.plan import build_plan
from rubricrl.cluster.site import load_site
from rubricrl.cluster.submit import job_state, last_submission, submit
from rubricrl.commands.common import accept_trailing_overrides
from rubricrl.errors import Problems, UserError
from rubricrl.papers import help_list

DEFAULT_SITE = "slurm/site.yaml"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "cluster",
        help="plan / submit / follow a replication on Slurm",
        description="Run a replication pipeline as Slurm jobs (one per stage, afterok "
        "dependencies, judge server job, requeue on preemption).",
    )
    sub = p.add_subparsers(dest="cluster_cmd", metavar="ACTION", required=True)
    for name, help_ in (
        ("plan", "print every job, its resources and a GPU-hour estimate; submit nothing"),
        ("submit", "submit the stage graph (finished stages are skipped)"),
        ("status", "stage status and the Slurm state of the last submission's jobs"),
    ):
        s = sub.add_parser(name, help=help_, description=help_)
        s.add_argument("paper", help=f"replication: {help_list()}")
        s.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides (as rubricrl replicate)")
        s.add_argument(
            "--site",
            default=os.environ.get("RUBRICRL_SITE", DEFAULT_SITE),
            help=f"site file (default $RUBRICRL_SITE or {DEFAULT_SITE}; template slurm/site.example.yaml)",
        )
        s.add_argument("--repo", default=None, help="repository checkout (default: the site file's paths.repo)")
        s.add_argument(
            "--nodes",
            type=int,
            default=None,
            help="NeMo RL recipe size for training stages (default: the largest recipe the paper has)",
        )
        if name == "submit":
            s.add_argument("--dry-run", action="store_true", help="print the sbatch command lines, submit nothing")
        accept_trailing_overrides(s)
    c = sub.add_parser("check-containers", help="check containers/*.def for structure (sections, labels, secrets)")
    c.add_argument("paths", nargs="*", help="definition files (default containers/*.def)")
    return p


def _plan(args: argparse.Namespace):
    site_path = Path(args.site)
    if not site_path.exists():
        raise UserError(
            f"site file not found; copy slurm/site.example.yaml to {DEFAULT_SITE} and fill it in (or pass --site)",
            path=str(site_path),
        )
    site = load_site(site_path)
    repo = Path(args.repo).resolve() if args.repo else site.paths.repo
    return build_plan(args.paper, list(args.overrides), site, repo=repo, nodes=args.nodes)


def print_plan(plan, out=sys.stdout) -> None:
    """The human-readable plan: header, one row per job, the GPU-hour total and its basis."""
    w = out.write
    w(
        f"plan: {plan.paper}, run {plan.run_name} ({plan.scale} scale, engine {plan.engine}) on site "
        f"{plan.site.name}\nrun folder: {plan.run_dir}\n"
    )
    w("stages: " + ", ".join(f"{s['name']} ({s['status']})" for s in plan.stages) + "\n")
    if not plan.jobs:
        w("every stage is done: nothing to submit\n")
        return
    w(f"\n{'job':11s} {'kind':8s} {'nodes x GPUs':13s} {'CPUs':>5s} {'time':>11s} {'GPU-h':>8s}  after\n")
    for j in plan.jobs:
        deps = [
            *(f"ok:{d}" for d in j.after_ok),
            *(f"start:{d}" for d in j.after_start),
            *(f"any:{d}" for d in j.after_any),
        ]
        shape = f"{j.nodes} x {j.gpus_per_node}" + (f" (x{j.array})" if j.array > 1 else "")
        w(
            f"{j.name:11s} {j.kind:8s} {shape:13s} {j.cpus_per_task:5d} {j.time:>11s} {j.gpu_hours:8.1f}  "
            f"{' '.join(deps) or '-'}\n"
        )
    w(f"\ntotal: {plan.gpu_hours:.1f} GPU-hours\n")
    for j in plan.jobs:
        if j.gpus:
            w(f"  {j.name}: {j.gpu_hours_basis}\n")
    w(f"W&B: project {plan.wandb['project']} ({plan.wandb['mode']}), group {plan.run_name}: {plan.wandb_url()}\n")


def _status(plan) -> int:
    print(f"run {plan.run_name}: {plan.run_dir}")
    for s in plan.stages:
        print(f"  stage {s['name']:12s} {s['status']}")
    prev = last_submission(plan)
    if not prev:
        print("no submission recorded in " + str(plan.slurm_dir))
        return 0
    print(f"last submission {prev['time']}:")
    for name, jid in prev["jobs"].items():
        print(f"  job {name:10s} {jid:>8s} {job_state(jid) or 'gone (finished long ago)'}")
    return 0


def _check_containers(paths: list[str]) -> int:
    files = [Path(p) for p in paths] or sorted(Path("containers").glob("*.def"))
    if not files:
        raise UserError("no containers/*.def here; run from the repository root or pass the files")
    problems = [p for f in files for p in check_def(f)]
    if problems:
        raise Problems(problems)
    for f in files:
        print(f"{f}: ok")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.cluster_cmd == "check-containers":
        return _check_containers(args.paths)
    plan = _plan(args)
    if args.cluster_cmd == "plan":
        print_plan(plan)
        return 0
    if args.cluster_cmd == "status":
        return _status(plan)

    if args.dry_run:
        print_plan(plan)
        print()
    submit(plan, dry_run=args.dry_run)
    return 0
