"""Training stages on NeMo RL (``run.engine=nemo_rl``, paper scale on clusters).

A pipeline's training stage hands its prompts here instead of to TRL (:func:`train_nemo_rl`); the
stage folder ``runs/<run>/<stage>/`` then holds::

    nemo_rl/train.jsonl         the prompts as NeMo RL rows (rubricrl.train.nemo_rl_env.nemo_rl_row)
    nemo_rl/config.yaml         the NeMo RL config generated for this run (rubricrl.cluster.nemo_rl),
                                the same generator as the reviewed replications/<paper>/nemo_rl/*.yaml
    nemo_rl/checkpoints/        NeMo RL's checkpoints (step_<N>/); NeMo RL resumes from the newest
    nemo_rl/env_metrics.jsonl   one rubric-metrics record per GRPO step; rollouts.jsonl: every graded
                                rollout with its GRPO step; reward_health.json: the reward-health summary
    final/                      the newest checkpoint converted to Hugging Face format
                                (slurm/convert_checkpoint.sh to-hf): the next stage and evaluation load it

The driver is :func:`rubricrl.train.nemo_rl_driver.run_grpo` (NeMo RL's ``examples/run_grpo.py`` with the
rubric environment registered), called with the generated config plus overrides naming this stage's
folders, the W&B run, the judge endpoint and the starting model. It runs on the Ray cluster that
``slurm/stage.sbatch`` starts (``RR_RAY=1``). Without NeMo RL (any machine outside the training
image) the stage stops at once with a :class:`UserError` naming what is missing and the image to use.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from rubricrl.cluster import nemo_rl as recipes
from rubricrl.config import repo_root
from rubricrl.errors import UserError
from rubricrl.jsonl import write_jsonl_atomic
from rubricrl.reward.drift_file import FILE, summary_from_file
from rubricrl.train import nemo_rl_driver
from rubricrl.train.drift_monitor import gold_label, thresholds_of
from rubricrl.train.nemo_rl_env import nemo_rl_row
from rubricrl.train.stages import file_hash
from rubricrl.types import Rubric

log = logging.getLogger(__name__)

NEMO_RL_IMAGE = "nvcr.io/nvidia/nemo-rl:v0.7.0"
DEFAULTS = "examples/configs/grpo_math_1B.yaml"

Driver = Callable[[Path, list[str], Path], None]
"""``driver(config, overrides, nemo_rl_root)``: :func:`rubricrl.train.nemo_rl_driver.run_grpo`."""
Converter = Callable[[Path, Path], None]
"""``converter(checkpoint_dir, out_dir)``: :func:`convert_to_hf`."""


def nemo_rl_root() -> Path:
    """Where NeMo RL lives: ``$NEMO_RL_ROOT``, else ``/opt/nemo-rl`` (the container's checkout)."""
    return Path(os.environ.get("NEMO_RL_ROOT", "/opt/nemo-rl"))


def require_nemo_rl(root: Path) -> None:
    """Raise a one-line :class:`UserError` unless NeMo RL's GRPO entry point is at ``root``."""
    if not (Path(root) / "examples" / "run_grpo.py").is_file():
        raise UserError(
            f"run.engine=nemo_rl needs NeMo RL, which is not installed here ({root}/examples/run_grpo.py "
            f"is missing; NEMO_RL_ROOT names another checkout): run the stage inside the training image "
            f"(containers/train.def, from {NEMO_RL_IMAGE}; `make containers`, submitted with "
            "`rubricrl cluster submit`), or train with run.engine=trl"
        )


def pick_recipe(paper: str, stage: str, nodes: int | None = None) -> Any:
    """The cluster recipe of ``paper``'s ``stage``: ``$RR_NEMO_RECIPE`` (set by the submitter), else the
    one for the allocation's node count (``$SLURM_JOB_NUM_NODES``), else the largest.

    Raises:
        UserError: no recipe for the stage or the node count.
    """
    cands = [r for r in recipes.RECIPES.values() if r.paper == paper and r.stage in (stage, "rl")]
    if not cands:
        raise UserError(f"no NeMo RL recipe for {paper} stage {stage!r} (rubricrl.cluster.nemo_rl.RECIPES)")
    name = os.environ.get("RR_NEMO_RECIPE")
    if name:
        for r in cands:
            if r.name == name:
                return r
        raise UserError(
            f"RR_NEMO_RECIPE={name} is not a recipe of {paper} stage {stage!r}; "
            f"known: {', '.join(r.name for r in cands)}"
        )
    nodes = nodes or int(os.environ.get("SLURM_JOB_NUM_NODES") or 0) or None
    if nodes is not None:
        fit = [r for r in cands if r.nodes == nodes]
        if not fit:
            raise UserError(
                f"no NeMo RL recipe for {paper} stage {stage!r} on {nodes} nodes "
                f"(recipes: {', '.join(f'{r.name} ({r.nodes} nodes)' for r in cands)})"
            )
        cands = fit
    return max(cands, key=lambda r: r.nodes)


def write_rows(
    path: Path,
    items: Sequence[tuple[list[dict[str, str]], Rubric, str]],
    defense: Rubric | None = None,
    monitor_rubrics: Mapping[str, Rubric] | None = None,
) -> int:
    """Write ``(conversation, rubric, prompt_id)`` items as NeMo RL rows (JSONL, atomically); returns the count.

    ``monitor_rubrics``: rubric id -> what the drift monitor's gold judge grades instead (carried in the row).
    """
    gold = dict(monitor_rubrics or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = (
        nemo_rl_row(conversation, rubric, prompt_id, defense=defense, monitor_rubric=gold.get(rubric.id))
        for conversation, rubric, prompt_id in items
    )
    return write_jsonl_atomic(path, rows, overwrite=True)  # the stage's own input file, rewritten whole


def convert_to_hf(checkpoint_dir: Path, out_dir: Path) -> None:
    """``slurm/convert_checkpoint.sh to-hf CHECKPOINT_DIR OUT_DIR`` (newest ``step_<N>``), inside this process's
    environment: the stage already runs in the training image, so the script must not wrap itself in one.

    Raises:
        UserError: the script failed (its output says why).
    """
    script = repo_root() / "slurm" / "convert_checkpoint.sh"
    env = {k: v for k, v in os.environ.items() if k != "RR_SITE_ENV"}
    cmd = ["bash", str(script), "to-hf", str(checkpoint_dir), str(out_dir)]
    log.info("converting %s -> %s: %s", checkpoint_dir, out_dir, " ".join(cmd))
    r = subprocess.run(cmd, env=env)
    if r.returncode != 0:
        raise UserError(
            f"converting the NeMo RL checkpoint {checkpoint_dir} to Hugging Face failed "
            f"(slurm/convert_checkpoint.sh exit {r.returncode}; its messages are above)",
            exit_code=1,
        )


def ensure_hf(final: Path, converter: Converter) -> Path:
    """``final`` (``<stage>/final``) as an HF checkpoint, converting the stage's newest NeMo RL step if needed."""
    if not (final / "config.json").is_file():
        converter(final.parent / "nemo_rl" / "checkpoints", final)
    return final


def stage_overrides(cfg: Any, stage: str, stage_dir: Path, init_model: Path | None, judge_server: bool) -> list[str]:
    """NeMo RL overrides tying the generated config to this run: folders, W&B run, judge endpoint, model."""
    nd = stage_dir / "nemo_rl"
    out = [
        f"data.train.data_path={nd / 'train.jsonl'}",
        f"checkpointing.checkpoint_dir={nd / 'checkpoints'}",
        f"logger.log_dir={nd / 'logs'}",
        f"env.rubric.metrics_path={nd / 'env_metrics.jsonl'}",
        f"env.rubric.rollouts_path={stage_dir / 'rollouts.jsonl'}",
        f"env.rubric.health_path={stage_dir / 'reward_health.json'}",
        f"logger.wandb_enabled={str(cfg.wandb.mode != 'disabled').lower()}",
        f"logger.wandb.project={cfg.wandb.project}",
        f"logger.wandb.name={cfg.run.name}-{stage}",
        f"++logger.wandb.group={cfg.run.name}",
    ]
    if init_model is not None:
        out.append(f"policy.model_name={init_model}")
    if judge_server and cfg.judge.base_url_file is not None:
        out.append(f"env.rubric.judge.base_url_file={Path(cfg.judge.base_url_file).resolve()}")
    if cfg.monitor.applies_to(stage):
        out.append(f"env.rubric.monitor.path={stage_dir / FILE}")
    return out


def train_nemo_rl(
    ctx: Any,
    items: Sequence[tuple[list[dict[str, str]], Rubric, str]],
    defense: Rubric | None = None,
    init_model: str | None = None,
    driver: Driver | None = None,
    converter: Converter | None = None,
    monitor_rubrics: Mapping[str, Rubric] | None = None,
) -> dict[str, Any]:
    """Run one training stage with NeMo RL GRPO; returns the stage's metrics.

    Args:
        ctx: the stage's :class:`~rubricrl.train.stages.StageContext`.
        items: ``(conversation, rubric, prompt_id)`` per training prompt.
        defense: a defense rubric graded as a veto beside every task rubric (Rubicon stage 2).
        init_model: ``<previous stage>/final`` to start from (converted from Megatron first if needed);
            None starts from ``policy.name``.
        driver, converter: the NeMo RL driver and the checkpoint converter (defaults: the real ones).
        monitor_rubrics: rubric id -> what the drift monitor's gold judge grades instead of the training rubric.

    Raises:
        UserError: NeMo RL missing, no recipe, conversion failed.
    """
    root = nemo_rl_root()
    require_nemo_rl(root)
    driver = driver or nemo_rl_driver.run_grpo
    converter = converter or convert_to_hf
    cfg, stage, d = ctx.cfg, ctx.stage.name, Path(ctx.dir)
    recipe = pick_recipe(cfg.paper, stage)
    nd = d / "nemo_rl"
    n = write_rows(nd / "train.jsonl", items, defense, monitor_rubrics if cfg.monitor.applies_to(stage) else None)
    ctx.record_hash("nemo_rl/train.jsonl", file_hash(nd / "train.jsonl"))
    init = ensure_hf(Path(init_model), converter) if init_model is not None else None
    conf = recipes.build_config(cfg, recipe)
    conf["defaults"] = str(root / DEFAULTS)
    config_path = nd / "config.yaml"
    config_path.write_text(yaml.safe_dump(conf, sort_keys=False, width=110, allow_unicode=True), encoding="utf-8")
    ctx.record_hash("nemo_rl/config.yaml", file_hash(config_path))
    overrides = stage_overrides(cfg, stage, d, init, recipe.judge == "server")
    print(
        f"[{stage}] NeMo RL GRPO, recipe {recipe.name} ({recipe.nodes}x{recipe.gpus_per_node} GPUs), {n} prompts"
        f"{', from ' + str(init) if init else ''}; config {config_path}",
        flush=True,
    )
    driver(config_path, overrides, root)
    final = ensure_hf(d / "final", converter)
    steps = sorted(
        int(p.name.split("_", 1)[1]) for p in (nd / "checkpoints").glob("step_*") if p.name.split("_", 1)[1].isdigit()
    )
    health_file = d / "reward_health.json"
    health = json.loads(health_file.read_text(encoding="utf-8")) if health_file.is_file() else None
    drift = _drift(cfg, stage, d)
    return {
        "engine": "nemo_rl",
        "recipe": recipe.name,
        "prompts": n,
        "config": str(config_path),
        "overrides": overrides,
        "final_model": str(final),
        "last_checkpoint_step": steps[-1] if steps else None,
        **({"reward_health": health} if health is not None else {}),
        **({"drift_monitor": drift} if drift is not None else {}),
    }


def _drift(cfg: Any, stage: str, stage_dir: Path) -> dict[str, Any] | None:
    """The stage's drift-monitor summary, rebuilt from the environment's ``monitor.jsonl`` (None: no checks)."""
    if not cfg.monitor.applies_to(stage):
        return None

    out = summary_from_file(
        stage_dir / FILE, judge=gold_label(cfg.monitor), stage=stage, thresholds=thresholds_of(cfg.monitor)
    )
    if out is not None:
        out.pop("rows", None)
    return out
