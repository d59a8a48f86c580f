"""Prompts JSONL in, rubric JSONL out: :func:`generate_rubrics`, the library entry point.

Files, for ``--out runs/x/rubrics.jsonl``:

=============================  =====================================================================
``rubrics.jsonl``              the kept rubrics, one per line, in our schema (``rubricrl validate`` reads it)
``rubrics.gates.jsonl``        one record per decided unit: kept or dropped, why, what each gate found;
                               a dropped rubric is in its record
``rubrics.failures.jsonl``     units with no valid rubric within ``attempts``: every attempt's reason and
                               the last answer (retried on the next run)
``rubrics.summary.json|.md``   counts kept and dropped per reason, criteria gate counts, tokens
``rubrics.gate_hist.png``      histogram of the discrimination score std per rubric, kept vs dropped
=============================  =====================================================================

Resumable and idempotent: a re-run skips units already kept or dropped and retries failed ones. The
three JSONL files are only appended to, each proven ours by its ``.manifest.json``
(:mod:`rubricrl.outputs`): a file another command (or a person) wrote is refused before a byte changes.
The summary files are rewritten from the JSONL files at the end of every run, only when the run owns them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rubricrl.errors import Problems, UserError
from rubricrl.generation import Sampler
from rubricrl.jsonl import read_jsonl_objects
from rubricrl.judge.build import build_judge
from rubricrl.outputs import Claim, OwnedOutput, claim, digest_file, digest_json
from rubricrl.progress import progress_bar
from rubricrl.rubrics.generate.config import GenerateConfig, resolve_judge, resolve_policy
from rubricrl.rubrics.generate.generate import RubricGenerator, UnitResult, load_seed
from rubricrl.rubrics.generate.summary import side_paths, summarise, write_summary
from rubricrl.rubrics.generate.units import load_prompt_records, make_units, shard_of

log = logging.getLogger(__name__)
COMMAND = "rubrics-generate"


def read_records(c: Claim) -> tuple[list[dict[str, Any]], int]:
    """The complete JSON-object lines of a claimed file with ids, and the length of its complete part.

    Raises:
        UserError: a line that is not such a record, or a non-empty file without a manifest.
    """
    if c.legacy:
        raise UserError(
            "exists without a manifest proving it is `rubricrl rubrics generate` output; nothing was changed. "
            "Choose another --out",
            path=str(c.path),
        )
    raw = c.raw
    lines = raw.split(b"\n")
    tail = lines.pop()
    keep = len(raw) - len(tail)
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            obj = None
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            raise UserError(
                "not a record of `rubricrl rubrics generate` (a JSON object with an 'id'); nothing was changed",
                path=str(c.path),
                line=i,
            )
        out.append(obj)
    if tail.strip():
        log.warning("%s: incomplete last line (interrupted write); it is dropped and its unit redone", c.path)
    return out, keep


def load_responses(path: str | Path) -> dict[str, list[str]]:
    """Prompt id -> responses, from a responses JSONL (``rubricrl generate``: ``source_id`` or ``prompt_id``)."""
    out: dict[str, list[str]] = {}
    problems = []
    for line, obj in read_jsonl_objects(path):
        pid = obj.get("source_id", obj.get("prompt_id"))
        text = obj.get("response")
        if not isinstance(pid, (str, int)) or isinstance(pid, bool) or not isinstance(text, str):
            problems.append(f"{path}:{line}: a responses line needs 'prompt_id' (or 'source_id') and 'response'")
            continue
        pid = str(pid).split("#", 1)[0] if "source_id" not in obj else str(pid)
        out.setdefault(pid, []).append(text)
    if problems:
        raise Problems(problems)
    return out


def _usage(obj: Any) -> dict[str, int] | None:
    backend = getattr(obj, "backend", None)
    usage = getattr(backend, "usage", None)
    return dict(usage) if isinstance(usage, dict) else None


def generate_rubrics(
    prompts: str | Path,
    cfg: GenerateConfig,
    out: str | Path,
    *,
    responses: str | Path | None = None,
    limit: int | None = None,
    shard: tuple[int, int] | None = None,
    show_progress: bool = True,
    components: dict[str, Any] | None = None,
    on_result: Callable[[UnitResult], None] | None = None,
) -> dict[str, Any]:
    """Generate, validate and gate rubrics for the prompts of ``prompts``; returns the summary.

    Args:
        prompts: prompts JSONL (see :mod:`.units`).
        cfg: the generation config.
        out: rubric JSONL to write or resume (side files beside it, see the module table).
        responses: responses JSONL for the discrimination gate (instead of sampling ``gates.discrimination.policy``).
        limit: only the first N units (after sharding).
        shard: ``(i, n)``: only units whose id hashes to shard i of n (:func:`.units.shard_of`).
        show_progress: a progress bar on a terminal, progress lines in logs.
        components: replacements for ``generator_sampler``, ``judge``, ``policy_sampler`` (unit tests).
        on_result: called with each unit's result as it is written.

    Raises:
        UserError: bad prompts, config, responses or output files (nothing is written then).
    """
    components = dict(components or {})
    records = load_prompt_records(prompts, cfg.task_key, need_task=cfg.granularity == "task")
    units = make_units(records, cfg.granularity)
    if shard is not None:
        units = [u for u in units if shard_of(u.id, shard[1]) == shard[0]]
    if limit is not None:
        if limit < 0:
            raise UserError("--limit must be >= 0")
        units = units[:limit]
    seed = load_seed(cfg)
    generator_cfg = resolve_policy(cfg.generator)
    inputs = {
        "prompts_sha256": digest_file(prompts),
        "config_sha256": digest_json(cfg.model_dump(mode="json")),
        "shard_sha256": digest_json(list(shard) if shard else None),
    }
    sides = side_paths(out)
    claims = {
        "rubrics": claim(out, COMMAND, inputs),
        "gates": claim(sides["gates"], COMMAND, inputs),
        "failures": claim(sides["failures"], COMMAND, inputs),
    }
    for key in ("summary_json", "summary_md", "histogram"):
        if sides[key].exists() and not claims["rubrics"].owned:
            raise UserError(
                f"exists, and {out} has no manifest proving this command wrote it; nothing was changed. "
                "Choose another --out",
                path=str(sides[key]),
            )
    kept_rows, keep_r = read_records(claims["rubrics"])
    gate_rows, keep_g = read_records(claims["gates"])
    fail_rows, keep_f = read_records(claims["failures"])
    done = {r["id"] for r in kept_rows} | {g["id"] for g in gate_rows if g.get("status") == "dropped"}
    todo = [u for u in units if u.id not in done]
    disc = cfg.gates.discrimination
    given = load_responses(responses) if responses is not None else None
    judge = components.get("judge")
    policy_sampler = components.get("policy_sampler")
    if disc.enabled and todo:
        if judge is None:
            judge = build_judge(resolve_judge(disc.judge))
        if policy_sampler is None and given is None:
            if disc.policy is None:
                raise UserError(
                    "gates.discrimination needs responses: set gates.discrimination.policy or pass --responses"
                )
            policy_sampler = Sampler(resolve_policy(disc.policy))
    generator = RubricGenerator(
        cfg,
        generator_cfg,
        generator_sampler=components.get("generator_sampler"),
        judge=judge,
        policy_sampler=policy_sampler,
        responses=given,
        seed=seed,
    )
    log.info("rubrics generate: %d units, %d already done, %d to go", len(units), len(units) - len(todo), len(todo))
    counts = {"kept": 0, "dropped": 0, "failed": 0}

    async def main() -> None:
        bar = progress_bar(len(todo), "generating rubrics", unit="rubric", disable=not show_progress)
        sem = asyncio.Semaphore(max(1, generator_cfg.concurrency))
        with (
            OwnedOutput(claims["rubrics"], keep=keep_r) as f_r,
            OwnedOutput(claims["gates"], keep=keep_g) as f_g,
            OwnedOutput(claims["failures"], keep=keep_f) as f_f,
        ):

            async def one(unit: Any) -> None:
                async with sem:
                    res = await generator.run_unit(unit)
                counts[res.status] += 1
                if res.status == "failed":
                    rec = {
                        "id": unit.id,
                        "attempts": res.attempts,
                        "reasons": res.reasons,
                        "answer": res.answer,
                        "generator": generator_cfg.model,
                    }
                    f_f.append(json.dumps(rec, ensure_ascii=False) + "\n")
                else:
                    if res.status == "kept":
                        f_r.append(json.dumps(res.rubric, ensure_ascii=False) + "\n")
                    rec = {"id": unit.id, **res.gate}
                    if res.status == "dropped":
                        rec["rubric"] = res.rubric
                    f_g.append(json.dumps(rec, ensure_ascii=False) + "\n")
                if on_result is not None:
                    on_result(res)
                bar.update(1)
                bar.set_postfix(**counts)

            try:
                await asyncio.gather(*(one(u) for u in todo))
            finally:
                bar.close()
                tokens_run.update(
                    generation=_usage(generator.sampler),
                    gate_policy=_usage(policy_sampler) if policy_sampler is not None else None,
                    gate_judge=_usage(getattr(judge, "model", None)) if judge is not None else None,
                )
                closers = [generator.sampler, policy_sampler] + ([judge] if components.get("judge") is None else [])
                for obj in closers:
                    close = getattr(obj, "aclose", None)
                    if close is not None:
                        await close()

    usage_before = None
    if claims["rubrics"].owned and sides["summary_json"].exists():
        try:
            usage_before = json.loads(sides["summary_json"].read_text(encoding="utf-8")).get("tokens")
        except (OSError, ValueError):
            usage_before = None
    tokens_run: dict[str, Any] = {"units": len(todo)}
    try:
        if todo:
            asyncio.run(main())
    finally:  # an interrupted run still leaves a summary of what it wrote
        summary = summarise(out, cfg, generator_cfg.model, generator.template, units, tokens_run, usage_before)
        if todo or claims["rubrics"].owned:
            write_summary(summary, sides)
    return summary
