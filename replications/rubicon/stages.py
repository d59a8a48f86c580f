"""The Rubicon pipeline (``rubricrl replicate rubicon``): stage functions and their order.

=============  =========================  ==============================================================================
stage          reads                      writes (in ``runs/<run>/<stage>/``)
=============  =========================  ==============================================================================
data           banks, seed tasks          stage1_train/heldout.jsonl, stage2_train/heldout.jsonl, rubrics.json
filter         data                       kept.jsonl, groups.jsonl, filter_stats.json, histogram.png
stage1_rl      filter, data               checkpoints/, final/, rollouts.jsonl, log_history.jsonl
hacking        stage1_rl                  taxonomy.md, taxonomy.json (stage 1's drift verdict), defense_rubric.json
filter_stage2  data, stage1_rl            as ``filter``, for the stage-2 prompts: stage-1 policy, stage-2 judge
stage2_rl      data, stage1_rl, hacking   checkpoints/, final/, rollouts.jsonl, log_history.jsonl
eval           data, stage1_rl, ...       eval.json, samples_<model>.jsonl (see ``evaluation``)
report         everything                 report.md, *.png (also copied to ``runs/<run>/report.md``)
=============  =========================  ==============================================================================

``filter_stage2`` runs only with ``rubicon.filter.stage2`` (paper scale: the paper filters before and between
the stages); ``stage2_rl`` then trains on the prompts it kept.

``checkpoints/checkpoint-*`` are deleted once the stage is done when ``run.keep_checkpoints`` is false (tiny scale).
Both RL stages also write ``reward_health.json`` (:mod:`rubricrl.reward.health`): a stage whose steps are mostly
ungraded, or whose rewards never vary, stops with exit 2 and no done marker. With ``monitor.judge`` set, they write
``monitor.jsonl`` (:mod:`rubricrl.train.drift_monitor`): every few steps a gold judge grades a sample of the step's
rollouts; stage 1's gold judge grades the whole bank rubric (the LLM criteria its programmatic-only training rubric
dropped). The hacking stage and the report show the checks.

Judging: stage 1 uses the programmatic verifiers (``rubicon.stage1.judge_llm: false``); stage 2 and the
judged evaluation use ``cfg.judge``, with a local vLLM server started around the stage when
``server.enabled`` (tiny scale).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from replications.rubicon.common import (
    judge_for,
    judge_server,
    load_bank,
    load_rubric_file,
    read_rows,
    rub,
    save_rubrics,
    write_rows,
)
from replications.rubicon.datasets import build_stage1, build_stage2, constraint_rubrics, ifeval_tasks, load_tasks
from replications.rubicon.evaluation import evaluate
from replications.rubicon.generated_rubrics import STAGE as RUBRICS_STAGE
from replications.rubicon.generated_rubrics import generates_rubrics, stage2_inputs, stage_rubrics_stage2
from replications.rubicon.hacking import mine, render_markdown
from replications.rubicon.report import write_report
from rubricrl.config import resolve_path
from rubricrl.data.filtering import plot_histogram, select_prompts
from rubricrl.errors import UserError
from rubricrl.generation import sample_responses
from rubricrl.judge import JudgeConfig
from rubricrl.report.drift import stage_drift
from rubricrl.rubrics.schema import Rubric, bank_hash
from rubricrl.train.drift_monitor import check_stages, stage_monitor
from rubricrl.train.nemo_rl_stage import train_nemo_rl
from rubricrl.train.rewards import RubricScorer, programmatic_only
from rubricrl.train.stages import Stage, StageContext, file_hash

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- monitor


TRAINING_STAGES = ("stage1_rl", "stage2_rl")  # what monitor.stages may name


@contextmanager
def monitor_for(
    ctx: StageContext, last_step: int, train_label: str, rubrics: dict[str, Rubric] | None = None
) -> Iterator[Any]:
    """The stage's gold-judge drift monitor (``cfg.monitor``; None when off for this stage), closed at the end.

    An ``openai`` gold judge without its own endpoint grades on the local vLLM judge server (started, or reused,
    here when ``server.enabled``: also for stage 1, whose training reward needs no server), else on ``judge``'s.
    """

    cfg = ctx.cfg
    m = cfg.monitor
    check_stages(m, TRAINING_STAGES, cfg.paper)
    if not m.applies_to(ctx.stage.name):
        yield None
        return
    shared, served = cfg.judge, None
    if (
        m.judge is not None
        and m.judge.backend == "openai"
        and m.judge.base_url is None
        and m.judge.base_url_file is None
        and cfg.server.enabled
    ):
        server = judge_server(cfg, ctx.dir)
        shared, served = JudgeConfig(base_url=server.base_url), server.served_model_name
    monitor = stage_monitor(
        cfg,
        ctx.stage.name,
        ctx.dir,
        last_step=last_step,
        train_label=train_label,
        shared=shared,
        served_model=served,
        rubrics=rubrics,
    )
    try:
        yield monitor
    finally:
        if monitor is not None:
            monitor.close()


# --------------------------------------------------------------------------- stages


def stage_data(ctx: StageContext) -> dict[str, Any]:

    cfg, d = ctx.cfg, rub(ctx.cfg).data
    s1_bank = load_bank(d.stage1_banks)
    chosen = constraint_rubrics(s1_bank, d.stage1_rubrics)
    if d.stage1_programmatic_only:
        chosen = [programmatic_only(r) for r in chosen]
    tasks = load_tasks(resolve_path(d.seed_tasks))
    if d.ifeval_tasks:
        tasks += ifeval_tasks(d.ifeval_tasks, cfg.run.seed)
    s1_train, s1_held = build_stage1(
        tasks,
        chosen,
        constraints_per_task=d.constraints_per_task,
        heldout_tasks=d.heldout_tasks,
        heldout_constraints_per_task=d.heldout_constraints_per_task,
        heldout_seed=d.heldout_seed,
        seed=cfg.run.seed,
        max_train_prompts=d.max_train_prompts,
        system_prompt=cfg.policy.system_prompt,
    )
    s2_bank = {r.id: r for r in load_bank(d.stage2_bank_paths)}
    s2_prompts = load_tasks(resolve_path(d.stage2_prompts), need_category=True)
    s2_train, s2_held, instance = build_stage2(
        s2_prompts,
        s2_bank,
        d.stage2_banks,
        heldout=d.stage2_heldout,
        heldout_seed=d.heldout_seed,
        seed=cfg.run.seed,
        writingbench=d.writingbench,
        system_prompt=cfg.policy.system_prompt,
    )
    used_s2 = [s2_bank[i] for i in sorted(set(d.stage2_banks.values()))]
    save_rubrics(ctx.dir / "rubrics.json", chosen + used_s2 + instance)
    for name, rows in [
        ("stage1_train", s1_train),
        ("stage1_heldout", s1_held),
        ("stage2_train", s2_train),
        ("stage2_heldout", s2_held),
    ]:
        ctx.record_hash(f"{name}.jsonl", write_rows(ctx.dir / f"{name}.jsonl", rows))
    ctx.record_hash("stage1_bank", bank_hash(s1_bank))
    ctx.record_hash("stage1_rubrics_used", bank_hash(chosen))
    ctx.record_hash("stage2_bank", bank_hash(list(s2_bank.values())))
    ctx.record_hash("rubrics.json", file_hash(ctx.dir / "rubrics.json"))
    return {
        "stage1_train": len(s1_train),
        "stage1_heldout": len(s1_held),
        "stage2_train": len(s2_train),
        "stage2_heldout": len(s2_held),
        "stage1_constraints": len(chosen),
        "instance_rubrics": len(instance),
        "tasks": len(tasks),
    }


def _filter_prompts(
    ctx: StageContext, rows: list[dict[str, Any]], rubrics: dict[str, Rubric], policy: str, llm: bool, who: str
) -> dict[str, Any]:
    """Sample k responses per prompt with ``policy``, score them, keep the prompts inside the quantile band.

    Writes ``kept.jsonl`` (hashed), ``groups.jsonl`` (every prompt's rewards and responses), ``filter_stats.json``
    and ``histogram.png`` in the stage folder. Stage 1 filters with the base policy and the verifiers; stage 2
    (``rubicon.filter.stage2``) with the stage-1 policy and the stage-2 judge: the paper filters before and
    between the stages.
    """

    cfg, f = ctx.cfg, rub(ctx.cfg).filter
    with ctx.progress(len(rows) * f.k, f"sampling k={f.k} per prompt with the {who}") as advance:
        samples = sample_responses(
            policy,
            [r["prompt"] for r in rows],
            n=f.k,
            max_new_tokens=f.max_new_tokens,
            temperature=cfg.grpo.temperature,
            top_p=cfg.grpo.top_p,
            batch_size=f.batch_size,
            seed=cfg.run.seed,
            chat_template_kwargs=cfg.policy.chat_template_kwargs,
            dtype=cfg.policy.dtype,
            device=cfg.policy.device,
            advance=advance,
        )
    with judge_for(cfg, llm, ctx.dir) as judge:
        scorer = RubricScorer(rubrics, judge)
        flat = [(r, s) for r, ss in zip(rows, samples) for s in ss]
        scored = scorer.score([r["prompt"] for r, _ in flat], [s for _, s in flat], [r["rubric_id"] for r, _ in flat])
        judge_stats = judge.stats.as_dict()
    groups: dict[str, list[float]] = {r["id"]: [] for r in rows}
    for (r, _), sc in zip(flat, scored):
        groups[r["id"]].append(sc.reward)
    res = select_prompts(groups, tuple(f.band), f.min_std, f.max_kept, cfg.run.seed)
    kept = set(res.kept)
    ctx.record_hash("kept.jsonl", write_rows(ctx.dir / "kept.jsonl", [r for r in rows if r["id"] in kept]))
    write_rows(
        ctx.dir / "groups.jsonl",
        [
            {
                "id": r["id"],
                "rubric_id": r["rubric_id"],
                "rewards": groups[r["id"]],
                "mean": res.means[r["id"]],
                "std": res.stds[r["id"]],
                "kept": r["id"] in kept,
                "responses": ss,
            }
            for r, ss in zip(rows, samples)
        ],
    )
    stats = {**res.stats(), "policy": who}
    if llm:
        stats["judge"] = judge_stats
    (ctx.dir / "filter_stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    plot_histogram(res, ctx.dir / "histogram.png", f"offline filter ({who}): band {list(f.band)}, k={f.k}")
    if not res.kept:
        raise UserError(f"the offline filter kept no prompt ({stats}); widen rubicon.filter.band or add prompts")
    return stats


def stage_filter(ctx: StageContext) -> dict[str, Any]:
    from rubricrl.train.trl_adapter import policy_path

    cfg, f = ctx.cfg, rub(ctx.cfg).filter
    data = ctx.input("data")
    rows = read_rows(data / "stage1_train.jsonl")
    rubrics = load_rubric_file(data / "rubrics.json")
    if not f.enabled:
        ctx.record_hash("kept.jsonl", write_rows(ctx.dir / "kept.jsonl", rows))
        stats = {"enabled": False, "candidates": len(rows), "kept": len(rows), "kept_frac": 1.0}
        (ctx.dir / "filter_stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
        return stats
    return _filter_prompts(ctx, rows, rubrics, policy_path(cfg.policy.name), False, "base policy")


def stage_filter_stage2(ctx: StageContext) -> dict[str, Any]:
    """``rubicon.filter.stage2``: filter the stage-2 training prompts with the stage-1 policy and the stage-2 judge."""
    r = rub(ctx.cfg)
    rows_file, rubrics_file = stage2_inputs(ctx)
    rows = read_rows(rows_file)
    rubrics = load_rubric_file(rubrics_file)
    policy = ctx.input("stage1_rl") / "final"
    ctx.record_hash("stage1_policy", file_hash(policy / "model.safetensors"))
    return _filter_prompts(ctx, rows, rubrics, str(policy), r.stage2.judge_llm, "stage-1 policy")


def filters_stage2(cfg: Any) -> bool:
    """Whether the pipeline filters the stage-2 prompts (``rubicon.filter.stage2`` with the filter enabled)."""
    f = rub(cfg).filter
    return bool(f.enabled and f.stage2)


def _train_stage(
    ctx: StageContext,
    rows: list[dict[str, Any]],
    rubrics: dict[str, Rubric],
    llm: bool,
    defense: Rubric | None,
    stage_cfg: Any,
    init_model: str | None,
    gold_rubrics: dict[str, Rubric] | None = None,
) -> dict[str, Any]:
    from rubricrl.train.trl_adapter import (
        AsyncRubricRewardFunc,
        RubricRewardFunc,
        judge_label,
        reward_health,
        train_grpo,
    )

    cfg = ctx.cfg
    if cfg.run.engine == "nemo_rl":  # paper scale: NeMo RL on the stage's Ray cluster (rubricrl.train.nemo_rl_stage)
        return train_nemo_rl(
            ctx,
            [(r["prompt"], rubrics[r["rubric_id"]], r["id"]) for r in rows],
            defense,
            init_model,
            monitor_rubrics=gold_rubrics,
        )
    settings = cfg.grpo.merged(stage_cfg.grpo)
    with (
        judge_for(cfg, llm, ctx.dir) as judge,
        monitor_for(ctx, settings.max_steps, judge_label(judge), gold_rubrics) as monitor,
    ):
        scorer = RubricScorer(rubrics, judge, defense)
        health = reward_health(cfg, settings, ctx.stage.name, judge)
        reward_cls = AsyncRubricRewardFunc if cfg.run.async_reward else RubricRewardFunc
        fn = reward_cls(
            scorer,
            rollouts_path=ctx.dir / "rollouts.jsonl",
            health=health,
            health_path=ctx.dir / "reward_health.json",
            monitor=monitor,
        )
        out = train_grpo(
            cfg,
            settings,
            rows,
            [fn],
            ctx.dir,
            f"{cfg.run.name}-{ctx.stage.name}",
            init_model,
            health=health,
            monitor=monitor,
        )
        out["judge"] = judge.stats.as_dict()
    hist = [h for h in read_rows(ctx.dir / "log_history.jsonl") if "reward" in h]
    if hist:
        k = max(1, len(hist) // 4)
        out["reward_first_quarter"] = sum(h["reward"] for h in hist[:k]) / k
        out["reward_last_quarter"] = sum(h["reward"] for h in hist[-k:]) / k
    ctx.record_hash("final_model", file_hash(Path(out["final_model"]) / "model.safetensors"))
    return out


def stage_stage1(ctx: StageContext) -> dict[str, Any]:
    r = rub(ctx.cfg)
    rows = read_rows(ctx.input("filter") / "kept.jsonl")
    rubrics = load_rubric_file(ctx.input("data") / "rubrics.json")
    gold = None
    if r.data.stage1_programmatic_only and ctx.cfg.monitor.applies_to(ctx.stage.name):
        # The gold judge grades the whole bank rubric: the LLM criteria (task quality, ...) that the programmatic-only
        # training rubric dropped are where training on the verifiers alone would show as drift.
        used = {row["rubric_id"] for row in rows}
        gold = {b.id: b for b in load_bank(r.data.stage1_banks) if b.id in used}
    return _train_stage(ctx, rows, rubrics, r.stage1.judge_llm, None, r.stage1, None, gold)


def stage_hacking(ctx: StageContext) -> dict[str, Any]:

    h = rub(ctx.cfg).hacking
    rollouts = read_rows(ctx.input("stage1_rl") / "rollouts.jsonl")
    tax = mine(rollouts, h.top_frac, h.examples, h.max_ratio)
    bank = {r.id: r for r in load_bank([h.defense_bank])}
    if h.defense_rubric not in bank:
        raise UserError(f"rubicon.hacking.defense_rubric {h.defense_rubric!r} is not in {h.defense_bank}")
    defense = bank[h.defense_rubric]
    if h.defense_programmatic_only:
        defense = programmatic_only(defense)
    save_rubrics(ctx.dir / "defense_rubric.json", [defense])
    ctx.record_hash("defense_rubric", defense.content_hash())

    drift = stage_drift(ctx.input("stage1_rl"))
    (ctx.dir / "taxonomy.json").write_text(
        json.dumps({**tax.as_dict(), "drift_monitor": drift}, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    (ctx.dir / "taxonomy.md").write_text(render_markdown(tax, defense.id, drift=drift), encoding="utf-8")
    out = {
        "rollouts": tax.n_all,
        "top": tax.n_top,
        "reward_cutoff": tax.reward_cutoff,
        "top_counts": {k: p.top_count for k, p in tax.patterns.items()},
        "all_counts": {k: p.all_count for k, p in tax.patterns.items()},
    }
    if drift is not None:
        out["drift_monitor"] = {
            k: drift.get(k)
            for k in (
                "checks",
                "valid_checks",
                "skipped_checks",
                "first_gap",
                "last_gap",
                "widening",
                "trend",
                "warnings",
                "verdict",
            )
        }
    return out


def stage_stage2(ctx: StageContext) -> dict[str, Any]:
    r = rub(ctx.cfg)
    rows_file, rubrics_file = stage2_inputs(ctx)
    if filters_stage2(ctx.cfg):
        rows_file = ctx.input("filter_stage2") / "kept.jsonl"
    rows = read_rows(rows_file)
    rubrics = load_rubric_file(rubrics_file)
    defense = next(iter(load_rubric_file(ctx.input("hacking") / "defense_rubric.json").values()))
    init = str(ctx.input("stage1_rl") / "final")
    return _train_stage(ctx, rows, rubrics, r.stage2.judge_llm, defense, r.stage2, init)


def stage_eval(ctx: StageContext) -> dict[str, Any]:

    return evaluate(ctx)


def stage_report(ctx: StageContext) -> dict[str, Any]:

    return write_report(ctx)


def stages(cfg: Any = None) -> list[Stage]:
    """Rubicon stages in order (``rubrics_stage2`` and ``filter_stage2`` only when their keys are on)."""
    gen = cfg is not None and generates_rubrics(cfg)
    f2 = cfg is not None and filters_stage2(cfg)
    return [
        Stage("data", stage_data, (), "build stage-1/stage-2 prompt sets and the held-out split"),
        Stage("filter", stage_filter, ("data",), "sample k responses per prompt, keep the central quantile band"),
        Stage("stage1_rl", stage_stage1, ("data", "filter"), "GRPO on instruction-following constraints"),
        Stage("hacking", stage_hacking, ("stage1_rl",), "mine high-reward rollouts for hacking patterns"),
        *(
            [
                Stage(
                    RUBRICS_STAGE,
                    stage_rubrics_stage2,
                    ("data",),
                    "generate an instance rubric per stage-2 prompt, keep those that pass the quality gates",
                )
            ]
            if gen
            else []
        ),
        *(
            [
                Stage(
                    "filter_stage2",
                    stage_filter_stage2,
                    ("data", "stage1_rl", *((RUBRICS_STAGE,) if gen else ())),
                    "sample k responses per stage-2 prompt with the stage-1 policy, keep the central band",
                )
            ]
            if f2
            else []
        ),
        Stage(
            "stage2_rl",
            stage_stage2,
            ("data", "stage1_rl", "hacking", *((RUBRICS_STAGE,) if gen else ()), *(("filter_stage2",) if f2 else ())),
            "GRPO on stage-2 rubrics with the defense rubric as a veto",
        ),
        Stage(
            "eval",
            stage_eval,
            ("data", "stage1_rl", "hacking", "stage2_rl"),
            "held-out evaluation of base, stage 1 and stage 2",
        ),
        Stage(
            "report",
            stage_report,
            ("data", "filter", "stage1_rl", "hacking", "stage2_rl", "eval"),
            "markdown + PNG report",
        ),
    ]
