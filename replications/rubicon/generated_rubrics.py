"""Rubicon's optional rubric-generation stage (``rubicon.rubrics.generate``; stage ``rubrics_stage2``).

The paper trains on rubrics written by humans, by LLMs and by both, at dataset, task and instance level. This
stage writes an instance rubric for each stage-2 training prompt with :mod:`rubricrl.rubrics.generate` (structured
output, validation, bounded retries, the near-duplicate / reference-copy / discrimination gates) before the
stage-2 filter, so ``filter_stage2`` and ``stage2_rl`` see each prompt with its generated rubric. A prompt whose
generation failed (no valid rubric within the attempts) or whose rubric a gate dropped keeps its bank rubric;
the summary counts both. A prompt that got no rubric because a server did not answer stops the stage instead
(a re-run retries it): a slow or absent generator must not decide which prompts train on which rubric.

Writes in ``runs/<run>/rubrics_stage2/``: ``rubrics.jsonl`` (the kept generated rubrics, with provenance) and the
generator's side files (failures, gate log, summary JSON / markdown / histogram), ``stage2_train.jsonl`` (the rows,
``rubric_id`` pointing at the generated rubric where one was kept) and ``rubrics.json`` (the data stage's rubrics
plus the generated ones). Re-running a stage interrupted half-way resumes the generation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replications.rubicon.common import judge_server, load_rubric_file, read_rows, rub, save_rubrics, write_rows
from rubricrl.config import resolve_path
from rubricrl.configs import config_path
from rubricrl.errors import UserError
from rubricrl.judge.server_start import served_judge
from rubricrl.rubrics.generate import side_paths
from rubricrl.rubrics.generate.config import GenerateConfig, load_generate_config, resolve_judge, resolve_policy
from rubricrl.rubrics.generate.stage import rubrics_for_rows
from rubricrl.train.stages import StageContext

STAGE = "rubrics_stage2"


def generates_rubrics(cfg: Any) -> bool:
    """Whether the pipeline generates the stage-2 rubrics (``rubicon.rubrics.generate``)."""
    return bool(rub(cfg).rubrics.generate)


def stage2_inputs(ctx: StageContext) -> tuple[Path, Path]:
    """The stage-2 training rows and rubrics a later stage reads: the generation stage's when it ran."""
    src = ctx.input(STAGE) if generates_rubrics(ctx.cfg) else ctx.input("data")
    return src / "stage2_train.jsonl", src / "rubrics.json"


def _config(cfg: Any) -> GenerateConfig:
    spec = rub(cfg).rubrics.config
    path = resolve_path(spec)
    if not path.exists() and "/" not in spec and not spec.endswith((".yaml", ".yml")):
        path = config_path("rubrics", spec)
    return load_generate_config(path)


def _endpointless(spec: Any) -> bool:
    return spec.backend == "openai" and spec.base_url is None and spec.base_url_file is None


def _on_pipeline_judge(gen: GenerateConfig, cfg: Any, server: Any | None) -> GenerateConfig:
    """``gen`` with its endpoint-less parts on the pipeline's judge server, and the gate grading there.

    The server is the local vLLM server the stage started (``server`` with ``server.enabled``), else the
    training judge's endpoint (a judge server job's endpoint file on a cluster). The generator and the gate's
    policy go there only when their config names no endpoint of its own (a strong model's API, the policy's
    own server); the gate's judge is the training judge (on CPU: the gate's judge config, served locally).
    """
    if server is not None:
        where = {"base_url": server.base_url, "base_url_file": None, "model": server.served_model_name}
    else:
        where = {"base_url": cfg.judge.base_url, "base_url_file": cfg.judge.base_url_file, "model": cfg.judge.model}

    def placed(spec: Any) -> Any:
        p = resolve_policy(spec)
        return p.model_copy(update=where) if _endpointless(p) else p

    d = gen.gates.discrimination
    judge = served_judge(resolve_judge(d.judge), server) if server is not None else cfg.judge
    disc = d.model_copy(update={"judge": judge, "policy": placed(d.policy) if d.policy is not None else None})
    return gen.model_copy(
        update={"generator": placed(gen.generator), "gates": gen.gates.model_copy(update={"discrimination": disc})}
    )


def _stop_on_call_failures(summary: dict[str, Any], out: Path) -> None:
    """A prompt left on its bank rubric because a server did not answer is not a result: stop the stage."""
    n = int(summary.get("failed_calls") or 0)
    if not n:
        return
    failures = side_paths(out)["failures"]
    raise UserError(
        f"{n} of {summary['units']} stage-2 prompts got no rubric because the generator or the gate's policy / "
        f"judge did not answer (reasons in {failures}). Stopped rather than training them on their bank rubrics; "
        "check the endpoints in rubicon.rubrics.config, then re-run: finished prompts are kept, failed ones retried",
        path=str(failures),
    )


def stage_rubrics_stage2(ctx: StageContext, components: dict[str, Any] | None = None) -> dict[str, Any]:
    """Generate instance rubrics for the stage-2 training prompts; rows whose rubric was kept point at it.

    Args:
        ctx: the stage context.
        components: replacements for the generator / judge / policy samplers (unit tests only).
    """
    cfg, r = ctx.cfg, rub(ctx.cfg).rubrics
    data = ctx.input("data")
    rows = read_rows(data / "stage2_train.jsonl")
    rubrics = load_rubric_file(data / "rubrics.json")
    gen = _config(cfg)
    if components is None and cfg.server.enabled:
        gen = _on_pipeline_judge(gen, cfg, judge_server(cfg, ctx.dir))
    elif components is None and (cfg.judge.base_url or cfg.judge.base_url_file):
        gen = _on_pipeline_judge(gen, cfg, None)  # a cluster: the judge server job's endpoint
    todo = rows[: r.limit] if r.limit else rows
    kept, summary = rubrics_for_rows(todo, gen, ctx.dir / "rubrics.jsonl", components=components)
    _stop_on_call_failures(summary, ctx.dir / "rubrics.jsonl")
    out_rows = [{**row, "rubric_id": row["id"]} if row["id"] in kept else row for row in rows]
    clash = sorted(set(kept) & set(rubrics))
    if clash:
        raise ValueError(f"generated rubric ids {clash} collide with bank rubric ids")  # ids are prompt ids
    ctx.record_hash("stage2_train.jsonl", write_rows(ctx.dir / "stage2_train.jsonl", out_rows))
    save_rubrics(ctx.dir / "rubrics.json", [*rubrics.values(), *kept.values()])
    return {
        "prompts": len(rows),
        "attempted": len(todo),
        "generated_kept": len(kept),
        "bank_rubric_kept": len(rows) - len(kept),
        "summary": summary,
    }
