"""The Slurm job graph of a replication: one job per pipeline stage still to run, plus the judge server.

:func:`build_plan` composes the experiment config exactly as the jobs will (user overrides plus the
site's ``run.root`` and W&B settings), asks the pipeline for its stages (``rubricrl replicate`` and the
jobs share :func:`rubricrl.papers.load_stages`), drops stages whose ``DONE`` marker matches
the config, and gives every remaining stage a job with resources and ``afterok`` dependencies on the
jobs of its inputs. Stages whose inputs are all done depend on nothing.

Job kinds and their resources:

=========  ==========================================================================================
``train``  GRPO stages (``*_rl``, ``train``). ``engine: nemo_rl``: Ray on Slurm over the nodes of the
           NeMo RL cluster recipe; ``engine: trl``: one node (tiny / single-GPU scale)
``gpu``    generation stages on one node (``filter``, ``hacking``, ``eval``)
``cpu``    ``data`` and ``report``: no GPU, the CPU partition when the site has one
``judge``  the vLLM judge server (``judge.backend: openai`` with ``judge.base_url_file``): a job array
           of ``judge.replicas`` servers; stages that judge start after it starts (``after:``) and
           wait for its endpoint file
``cleanup`` cancels the judge once every other job has ended (``afterany``)
=========  ==========================================================================================

GPU-hours: training stages use :func:`rubricrl.cluster.throughput.estimate_gpu_hours` (NeMo RL's
published tokens/s/GPU) when a generated NeMo RL config is available for the stage; every other job is
charged its time limit x GPUs, an upper bound, and says so.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rubricrl.cluster.nemo_rl import build_config, recipes
from rubricrl.cluster.site import SiteFile
from rubricrl.cluster.throughput import estimate_gpu_hours
from rubricrl.config import compose_experiment, config_hash
from rubricrl.errors import UserError
from rubricrl.papers import load_stages

log = logging.getLogger(__name__)

TRAIN_STAGES = ("train", "rl")
CPU_STAGES = ("data", "report")


def stage_kind(name: str) -> str:
    """``train``, ``gpu`` or ``cpu`` for a pipeline stage name."""
    if name in TRAIN_STAGES or name.endswith("_rl"):
        return "train"
    if name in CPU_STAGES:
        return "cpu"
    return "gpu"


@dataclass
class Job:
    """One Slurm job of the plan."""

    name: str
    kind: str
    script: str
    args: list[str]
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    time: str = "01:00:00"
    after_ok: list[str] = field(default_factory=list)
    after_start: list[str] = field(default_factory=list)
    after_any: list[str] = field(default_factory=list)
    array: int = 1
    requeue: bool = True
    gpu_hours: float = 0.0
    gpu_hours_basis: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node * self.array


@dataclass
class Plan:
    """Everything the submitter needs, and what ``plan`` prints."""

    paper: str
    run_name: str
    run_dir: Path
    scale: str
    engine: str
    overrides: list[str]
    site: SiteFile
    stages: list[dict[str, str]]
    jobs: list[Job]
    wandb: dict[str, Any]
    judge_endpoint: Path | None

    @property
    def slurm_dir(self) -> Path:
        return self.run_dir / "slurm"

    @property
    def gpu_hours(self) -> float:
        return sum(j.gpu_hours for j in self.jobs)

    def wandb_url(self) -> str:
        w = self.wandb
        entity = w.get("entity") or "<your-entity>"
        return f"https://wandb.ai/{entity}/{w['project']}/groups/{self.run_name}"


def site_overrides(site: SiteFile) -> list[str]:
    """Overrides every job passes so that the run folder and W&B come from the site file."""
    out = [f"++run.root={site.paths.runs}", f"++wandb.project={site.wandb.project}", f"++wandb.mode={site.wandb.mode}"]
    if site.wandb.entity:
        out.append(f"++wandb.entity={site.wandb.entity}")
    return out


def _hours(t: str) -> float:
    days = 0
    if "-" in t:
        d, t = t.split("-", 1)
        days = int(d)
    parts = [int(x) for x in t.split(":")]
    if len(parts) == 1:  # minutes
        return days * 24 + parts[0] / 60
    while len(parts) < 3:
        parts.append(0)
    h, m, s = parts
    return days * 24 + h + m / 60 + s / 3600


def _done_status(run_dir: Path, name: str, chash: str) -> str:
    """``done`` / ``partial`` / ``pending``; a marker from another config is an error, as in the runner."""
    marker = run_dir / name / "DONE"
    if marker.is_file():
        try:
            got = json.loads(marker.read_text(encoding="utf-8")).get("config_hash")
        except (OSError, ValueError):
            got = None
        if got != chash:
            raise UserError(
                f"stage {name!r} in {run_dir} was finished with a different configuration "
                f"({str(got)[:12]} != {chash[:12]}); use a new run.name=... or redo it locally "
                "with `rubricrl replicate ... --stage NAME --force`"
            )
        return "done"
    return "partial" if (run_dir / name).is_dir() else "pending"


def _train_layout(cfg: Any, stage: str, site: SiteFile, nodes: int | None) -> tuple[int, float | None, str, str]:
    """(nodes, GPU-hours or None, basis, recipe name) of a NeMo RL training stage from its cluster recipe.

    The recipe (the paper's ``recipes.py``, :func:`rubricrl.cluster.nemo_rl.recipes`) gives the node count; the
    GPU-hours come from :func:`rubricrl.cluster.throughput.estimate_gpu_hours` on the config generated for it.
    """
    known = recipes()
    cands = [r for r in known.values() if r.paper == cfg.paper and (r.stage == stage or r.stage == "rl")]
    if nodes is not None:
        cands = [r for r in cands if r.nodes == nodes]
    if not cands:
        sizes = sorted({r.nodes for r in known.values() if r.paper == cfg.paper})
        raise UserError(
            f"no NeMo RL recipe for {cfg.paper} stage {stage!r}"
            + (f" on {nodes} nodes (recipes exist for {sizes} nodes; use --nodes)" if nodes else "")
        )
    recipe = max(cands, key=lambda r: r.nodes)
    if recipe.gpus_per_node != site.slurm.gpus_per_node:
        raise UserError(
            f"recipe {recipe.name} needs {recipe.gpus_per_node} GPUs per node but the site file "
            f"says slurm.gpus_per_node: {site.slurm.gpus_per_node}",
            path=str(site.source) if site.source else None,
        )
    try:
        hours, basis = estimate_gpu_hours(build_config(cfg, recipe))
    except UserError as e:
        return recipe.nodes, None, f"recipe {recipe.name}; no throughput estimate: {e}", recipe.name
    return recipe.nodes, hours, f"recipe {recipe.name}: {basis}", recipe.name


def _judge_is_policy(paper: str) -> bool:
    """Whether ``paper``'s NeMo RL recipe grades with the policy's own vLLM engine (no judge job then)."""
    return any(r.paper == paper and r.judge == "policy" for r in recipes().values())


def build_plan(
    paper: str, overrides: list[str], site: SiteFile, repo: Path | None = None, nodes: int | None = None
) -> Plan:
    """The job graph for ``paper`` with ``overrides`` on ``site``.

    Args:
        nodes: pick the NeMo RL recipe with this many nodes (default: the largest the paper has).

    Raises:
        UserError: bad config or overrides, a stage marker from another config.
    """

    all_overrides = [*site_overrides(site), *overrides]
    config_dir = (repo / "replications" / paper / "configs") if repo else None
    cfg = compose_experiment(paper, all_overrides, config_dir if config_dir and config_dir.is_dir() else None)
    stages = load_stages(paper, cfg)
    run_dir = Path(cfg.run.dir)
    chash = config_hash(cfg)
    gpn = site.slurm.gpus_per_node
    on_gpus = cfg.run.engine == "nemo_rl" or str(getattr(cfg.policy, "device", "cpu")).startswith("cuda")
    cpus = site.slurm.cpus_per_node
    times = {**{"train": "24:00:00", "gpu": "08:00:00", "judge": "48:00:00", "cpu": "01:00:00"}, **site.slurm.time}

    judge_endpoint = None
    jobs: list[Job] = []
    # A judge server job when the config wants a served judge: either an endpoint file to read
    # (paper scale) or a per-stage local server (tiny scale, ``server.enabled``), which becomes the job.
    # Not when the grader is the policy's own engine (self-rewarding on NeMo RL: its recipe says so).
    # The endpoint override is part of the config hash the jobs record, so it is applied before the
    # DONE markers are compared (a resubmission then finds the stages the last one finished).
    serves_judge = (
        cfg.judge.backend == "openai"
        and (cfg.judge.base_url_file is not None or cfg.server.enabled)
        and not (cfg.run.engine == "nemo_rl" and _judge_is_policy(cfg.paper))
    )
    endpoint = run_dir / "judge" / "endpoint.json"
    serve_model = cfg.server.model if cfg.server.enabled else cfg.judge.model
    if serves_judge:
        all_overrides = [o for o in all_overrides if o.lstrip("+").split("=", 1)[0] != "judge.base_url_file"]
        all_overrides.append(f"++judge.base_url_file={endpoint}")
        if cfg.server.enabled:
            all_overrides.append("server.enabled=false")
        cfg = compose_experiment(paper, all_overrides, config_dir if config_dir and config_dir.is_dir() else None)
        chash = config_hash(cfg)
    status = {s.name: _done_status(run_dir, s.name, chash) for s in stages}
    todo = [s for s in stages if status[s.name] != "done"]
    if serves_judge and any(stage_kind(s.name) != "cpu" for s in todo):
        judge_endpoint = endpoint
        jgpus = site.judge.gpus if site.judge.gpus is not None else (gpn if on_gpus else 0)
        jobs.append(
            Job(
                name="judge",
                kind="judge",
                script="slurm/judge.sbatch",
                args=[serve_model, cfg.judge.model],
                gpus_per_node=jgpus,
                cpus_per_task=cpus,
                time=times["judge"],
                array=site.judge.replicas,
                requeue=True,
                env={"RR_JUDGE_ENDPOINT": str(judge_endpoint)},
            )
        )

    planned = {s.name for s in todo}
    for s in todo:
        kind = stage_kind(s.name)
        job = Job(
            name=s.name,
            kind=kind,
            script="slurm/stage.sbatch",
            args=[paper, s.name, *all_overrides],
            cpus_per_task=cpus,
            time=times[kind],
        )
        job.after_ok = [i for i in s.inputs if i in planned]
        if kind != "cpu" and judge_endpoint is not None:
            job.after_start = ["judge"]
            job.env["RR_JUDGE_ENDPOINT"] = str(judge_endpoint)
        if kind == "cpu":
            job.gpus_per_node = 0
        elif kind == "train" and cfg.run.engine == "nemo_rl":
            job.nodes, hours, basis, recipe = _train_layout(cfg, s.name, site, nodes)
            job.gpus_per_node = gpn
            job.env["RR_RAY"] = "1"
            if recipe:  # the stage generates its NeMo RL config from this recipe (rubricrl.train.nemo_rl_stage)
                job.env["RR_NEMO_RECIPE"] = recipe
            if hours is not None:
                job.gpu_hours, job.gpu_hours_basis = hours, basis
            elif basis:
                job.gpu_hours = job.gpus * _hours(job.time)
                job.gpu_hours_basis = f"upper bound {job.gpus} GPUs x time limit {job.time} ({basis})"
        else:
            job.gpus_per_node = gpn if on_gpus else 0
        if not job.gpu_hours_basis:
            job.gpu_hours = job.gpus * _hours(job.time)
            job.gpu_hours_basis = f"upper bound: {job.gpus} GPUs x time limit {job.time}" if job.gpus else "no GPUs"
            if kind == "train" and job.gpus:
                job.gpu_hours_basis += (
                    " (PLACEHOLDER: no generated NeMo RL config for this stage, so no throughput-based estimate)"
                )
        jobs.append(job)
    if judge_endpoint is not None:
        judge, users = jobs[0], [j for j in jobs if "judge" in j.after_start and j.gpus]
        wall = sum(j.gpu_hours / j.gpus for j in users)
        judge.gpu_hours = judge.gpus * wall
        judge.gpu_hours_basis = (
            f"{judge.gpus} judge GPUs x {wall:.1f} h, the wall time of the jobs that use it "
            f"({', '.join(j.name for j in users) or 'none'})"
        )
        jobs.append(
            Job(
                name="cleanup",
                kind="cleanup",
                script="slurm/cleanup.sbatch",
                args=[],
                cpus_per_task=1,
                time="00:10:00",
                requeue=False,
                after_any=[j.name for j in jobs if j.name != "judge"],
                gpu_hours_basis="no GPUs",
            )
        )
    return Plan(
        paper=paper,
        run_name=cfg.run.name,
        run_dir=run_dir,
        scale=cfg.run.scale,
        engine=cfg.run.engine,
        overrides=all_overrides,
        site=site,
        stages=[{"name": s.name, "status": status[s.name], "kind": stage_kind(s.name)} for s in stages],
        jobs=jobs,
        wandb={"project": cfg.wandb.project, "entity": cfg.wandb.entity, "mode": cfg.wandb.mode},
        judge_endpoint=judge_endpoint,
    )
