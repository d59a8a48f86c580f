"""Submit a :class:`~rubricrl.cluster.plan.Plan` with ``sbatch`` and follow it with ``squeue``/``scontrol``.

Per run, ``runs/<run>/slurm/`` holds ``site.env`` (the site settings the job scripts source),
``<job>.env`` (one job's settings), ``<job>-<jobid>.out`` (its log, appended across requeues) and
``submissions.jsonl`` (one line per submission: job ids, sbatch command lines). A second submission
while jobs of the previous one are still queued or running is refused, so nothing runs twice.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from rubricrl.cluster.plan import Job, Plan
from rubricrl.cluster.site import SiteFile
from rubricrl.errors import UserError

log = logging.getLogger(__name__)

ACTIVE = {
    "PENDING",
    "RUNNING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "SUSPENDED",
    "CONFIGURING",
    "COMPLETING",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "PREEMPTED",
}


def _q(v: object) -> str:
    return shlex.quote(str(v))


def site_env(site: SiteFile) -> dict[str, str]:
    """What ``slurm/lib/common.sh`` reads (``RR_*``), plus the site's own ``env``."""
    c, p, j = site.containers, site.paths, site.judge
    binds = [str(p.repo), str(p.runs), *([str(p.hf_home)] if p.hf_home else []), *c.binds]
    env = {
        "RR_SITE": site.name,
        "RR_REPO": str(p.repo),
        "RR_RUNS": str(p.runs),
        "RR_VENV": str(p.venv),
        "RR_RUNTIME": c.runtime,
        "RR_APPTAINER": c.executable,
        "RR_BINDS": ",".join(dict.fromkeys(binds)),
        "RR_IMAGE_TRAINING": str(c.training or ""),
        "RR_IMAGE_JUDGE": str(c.judge or ""),
        "RR_IMAGE_CPU": str(c.cpu or ""),
        "RR_JUDGE_LAUNCHER": j.launcher,
        "RR_JUDGE_HOST": j.host,
        "RR_JUDGE_PORT": str(j.port),
        "RR_JUDGE_TIMEOUT": str(j.startup_timeout_s),
        "RR_JUDGE_ARGS": " ".join(_q(a) for a in j.extra_args),
        "RR_SIGNAL_SECONDS": str(site.slurm.signal_seconds),
    }
    if p.hf_home:
        env["HF_HOME"] = str(p.hf_home)
    env.update(site.env)
    return env


def _write_env(path: Path, env: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(f"export {k}={_q(v)}\n" for k, v in env.items()), encoding="utf-8")
    os.replace(tmp, path)


def sbatch_args(plan: Plan, job: Job, ids: dict[str, str]) -> list[str]:
    """The ``sbatch`` command line of ``job``; dependencies use ``ids`` (job name -> Slurm id)."""
    s = plan.site.slurm
    out_name = f"{job.name}-%A_%a.out" if job.array > 1 else f"{job.name}-%j.out"
    args = [
        "sbatch",
        "--parsable",
        f"--job-name=rr-{plan.run_name}-{job.name}",
        f"--chdir={plan.site.paths.repo}",
        f"--output={plan.slurm_dir / out_name}",
        "--open-mode=append",
        f"--nodes={job.nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={job.cpus_per_task}",
        f"--time={job.time}",
    ]
    if s.account:
        args.append(f"--account={s.account}")
    partition = s.cpu_partition if (job.gpus_per_node == 0 and s.cpu_partition) else s.partition
    args.append(f"--partition={partition}")
    if s.qos:
        args.append(f"--qos={s.qos}")
    if s.constraint and job.gpus_per_node:
        args.append(f"--constraint={s.constraint}")
    if s.mem is not None:
        args.append(f"--mem={s.mem}")
    if job.gpus_per_node:
        args.append(
            f"--gpus-per-node={job.gpus_per_node}" if s.gres == "gpus-per-node" else f"--gres=gpu:{job.gpus_per_node}"
        )
    if job.requeue and s.requeue:
        args += ["--requeue", f"--signal=B:USR1@{s.signal_seconds}"]
    else:
        args.append("--no-requeue")
    if job.array > 1:
        args.append(f"--array=0-{job.array - 1}")
    deps = []
    for kind, names in (("afterok", job.after_ok), ("after", job.after_start), ("afterany", job.after_any)):
        known = [ids[n] for n in names if n in ids]
        if known:
            deps.append(kind + ":" + ":".join(known))
    if deps:
        args += [f"--dependency={','.join(deps)}", "--kill-on-invalid-dep=yes"]
    args += list(s.extra_args)
    args += [
        f"--export=ALL,RR_SITE_ENV={plan.slurm_dir / 'site.env'},RR_JOB_ENV={plan.slurm_dir / (job.name + '.env')}",
        str(plan.site.paths.repo / job.script),
        *job.args,
    ]
    return args


def job_state(job_id: str) -> str | None:
    """Slurm state of a job (``RUNNING``, ``PENDING``, ``COMPLETED``...), None when Slurm no longer knows it."""
    try:
        r = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return None
    states = [f.split("=", 1)[1] for line in r.stdout.splitlines() for f in line.split() if f.startswith("JobState=")]
    if not states:
        return None
    for st in states:  # array: the first active task wins
        if st in ACTIVE:
            return st
    return states[0]


def last_submission(plan: Plan) -> dict | None:
    path = plan.slurm_dir / "submissions.jsonl"
    if not path.is_file():
        return None
    lines = [ln for ln in path.read_text(encoding="utf-8").split("\n") if ln.strip()]
    return json.loads(lines[-1]) if lines else None


def submit(plan: Plan, dry_run: bool = False, echo: Callable[[str], None] = print) -> dict[str, str]:
    """Submit every job of ``plan`` (or print the sbatch lines when ``dry_run``); returns name -> job id.

    Raises:
        UserError: sbatch missing or failing, or jobs of the previous submission still active.
    """
    if not plan.jobs:
        echo(f"nothing to submit: every stage of {plan.run_name} is done ({plan.run_dir})")
        return {}
    if not dry_run:
        if shutil.which("sbatch") is None:
            raise UserError("sbatch not found: submit from a Slurm login node (or `make setup-slurm` for a local one)")
        prev = last_submission(plan)
        if prev:
            active = {n: i for n, i in prev["jobs"].items() if job_state(i) in ACTIVE}
            if active:
                raise UserError(
                    f"jobs of the previous submission of {plan.run_name} are still queued or running: "
                    + ", ".join(f"{n}={i}" for n, i in active.items())
                    + f"; follow them with `rubricrl cluster status`, or `scancel {' '.join(active.values())}`"
                )
        _write_env(plan.slurm_dir / "site.env", site_env(plan.site))
    ids: dict[str, str] = {}
    lines = []
    for job in plan.jobs:
        env = {"RR_JOB_NAME": job.name, "RR_KIND": job.kind, "RR_RUN_DIR": str(plan.run_dir), **job.env}
        if job.kind == "cleanup" and "judge" in ids:
            env["RR_CANCEL_JOBS"] = ids["judge"]
        args = sbatch_args(plan, job, ids if not dry_run else {**{j.name: f"<{j.name}>" for j in plan.jobs}})
        lines.append(args)
        if dry_run:
            echo(" ".join(_q(a) for a in args))
            continue
        _write_env(plan.slurm_dir / f"{job.name}.env", env)
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            raise UserError(
                f"sbatch failed for job {job.name!r} (exit {r.returncode}): {r.stderr.strip()}; "
                f"jobs submitted so far: {ids or 'none'}",
                exit_code=1,
            )
        ids[job.name] = r.stdout.strip().split(";")[0]
        log_path = plan.slurm_dir / (
            f"{job.name}-{ids[job.name]}_*.out" if job.array > 1 else f"{job.name}-{ids[job.name]}.out"
        )
        echo(f"submitted {job.name:10s} job {ids[job.name]:>8s}  log {log_path}")
    if not dry_run:
        rec = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "paper": plan.paper,
            "run": plan.run_name,
            "overrides": plan.overrides,
            "jobs": ids,
            "sbatch": lines,
        }
        with open(plan.slurm_dir / "submissions.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        echo(f"W&B: project {plan.wandb['project']} ({plan.wandb['mode']}), group {plan.run_name}: {plan.wandb_url()}")
        echo(f"follow: rubricrl cluster status {plan.paper} ... (or squeue -u $USER); run folder {plan.run_dir}")
    return ids
