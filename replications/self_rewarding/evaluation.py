"""Evaluation stage of the self-rewarding pipeline.

``eval``: the policy before training (``policy.name``) and after (``train/final``) answers every held-out
conversation; a FIXED judge (never the trained policy) grades the answers against their rubrics; the
graded records (``graded_<before|after>.jsonl``, the interchange format of :mod:`rubricrl.scoring.graded`)
are scored with :func:`rubricrl.scoring.healthbench.score_records` (``overall_score`` clipped to [0, 1],
bootstrap std, n). The before / after difference gets a paired bootstrap 95% interval over examples.
Each phase writes its file once; an interrupted stage re-uses the files already complete.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from replications.self_rewarding.common import build_fixed_grader
from replications.self_rewarding.config import SECTION
from replications.self_rewarding.datasets import read_examples
from rubricrl.generation import sample_responses
from rubricrl.jsonl import read_jsonl_objects, write_jsonl_atomic
from rubricrl.judge import close_judge, grade_many
from rubricrl.judge.interfaces import GradingRequest
from rubricrl.judge.server_start import judge_server as start_judge_server
from rubricrl.judge.server_start import needs_server, served_judge
from rubricrl.scoring.graded import GradedRecord, make_record
from rubricrl.scoring.healthbench import score_example, score_records
from rubricrl.scoring.stats import paired_bootstrap
from rubricrl.train.stages import StageContext

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- fixed judge


@contextmanager
def fixed_judge(spec: Any, cfg: Any, name: str, log_dir: Path) -> Iterator[Any]:
    """The fixed grader of ``spec``; starts a local vLLM server when an HTTP judge has no endpoint."""

    if spec.kind == "judge" and needs_server(spec.judge, cfg.server):
        server = start_judge_server(cfg.server, log_dir / "vllm.log", shared=False)  # this stage's own
        try:
            judge = build_fixed_grader(spec.model_copy(update={"judge": served_judge(spec.judge, server)}), name)
            try:
                yield judge
            finally:
                close_judge(judge)
        finally:
            server.stop()
        return
    judge = build_fixed_grader(spec, name, cfg.policy.device, cfg.policy.dtype)
    try:
        yield judge
    finally:
        close_judge(judge)


def judge_summary(judge: Any, spec: Any) -> dict[str, Any]:
    """What the graded records say about their judge."""
    if spec.kind == "judge":
        return {
            "kind": "judge",
            "model": spec.judge.model,
            "backend": spec.judge.backend,
            "mode": spec.judge.mode,
            "template": spec.judge.template,
            "structured_output": spec.judge.structured_output,
        }
    tpl = judge.templates.primary
    return {
        "kind": "constrained",
        "model": spec.model,
        "template": tpl.name,
        "template_sha256": tpl.hash,
        "temperature": spec.temperature,
        "verdict_first": True,
    }


# --------------------------------------------------------------------------- eval stage


def finished_rows(path: Path, n: int) -> list[dict[str, Any]] | None:
    """The ``n`` rows an earlier attempt of the stage wrote to ``path``, or None when it must be redone.

    Read with :mod:`rubricrl.jsonl` (lines split at ``\\n`` only: a response holding U+2028, which
    HealthBench text does, stays one record).
    """

    if not path.is_file():
        return None
    rows = [obj for _, obj in read_jsonl_objects(path)]
    return rows if len(rows) == n else None


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:

    write_jsonl_atomic(path, rows, overwrite=True)  # the stage's own output, redone


def paired_diff_ci(
    before: Sequence[float], after: Sequence[float], n_bootstrap: int, seed: int
) -> tuple[float, float, float]:
    """Difference of clipped means (after - before) with a paired bootstrap 95% interval over examples
    (HealthBench clips its overall score to [0, 1]; :func:`rubricrl.scoring.stats.paired_bootstrap`)."""
    return paired_bootstrap(before, after, n_bootstrap, seed, clip=True)


def eval_stage(ctx: StageContext) -> dict[str, Any]:
    """Generate before / after on the held-out part, grade with the fixed judge, score."""
    from rubricrl.train.trl_adapter import policy_path

    cfg = ctx.cfg
    ev = cfg.section(SECTION).eval
    held = read_examples(ctx.input("data") / "heldout.jsonl")
    convs = [[{"role": str(m["role"]), "content": str(m["content"])} for m in ex.prompt] for ex in held]
    models = {"before": policy_path(cfg.policy.name), "after": str(ctx.input("train") / "final")}
    out: dict[str, Any] = {"n_heldout": len(held), "judge": None}
    per_example: dict[str, list[float | None]] = {}
    with fixed_judge(ev.grader, cfg, "eval-judge", ctx.dir) as judge:
        summary = judge_summary(judge, ev.grader)
        out["judge"] = summary
        for label, path in models.items():
            resp_file = ctx.dir / f"responses_{label}.jsonl"
            done = finished_rows(resp_file, len(held))
            if done is not None:
                responses = [r["response"] for r in done]
            else:
                with ctx.progress(len(held), f"{label}: generate") as advance:
                    responses = [
                        ss[0]
                        for ss in sample_responses(
                            path,
                            convs,
                            n=1,
                            max_new_tokens=ev.max_new_tokens,
                            temperature=ev.temperature,
                            top_p=ev.top_p,
                            batch_size=ev.batch_size,
                            seed=ev.seed,
                            chat_template_kwargs=cfg.policy.chat_template_kwargs,
                            dtype=cfg.policy.dtype,
                            device=cfg.policy.device,
                            advance=advance,
                        )
                    ]
                _write_jsonl(resp_file, [{"prompt_id": ex.prompt_id, "response": r} for ex, r in zip(held, responses)])
            graded_file = ctx.dir / f"graded_{label}.jsonl"
            done = finished_rows(graded_file, len(held))
            if done is not None:
                records = [GradedRecord(d) for d in done]
            else:
                reqs = [
                    GradingRequest(c, r, ex.rubric.criteria, rubric_id=ex.prompt_id)
                    for c, r, ex in zip(convs, responses, held)
                ]
                with ctx.progress(len(reqs), f"{label}: grade (fixed judge)") as advance:
                    verdicts = grade_many(judge, reqs, progress=lambda done, total: advance(1))
                records = [make_record(ex.raw, r, v, summary) for ex, r, v in zip(held, responses, verdicts)]
                _write_jsonl(graded_file, [rec.data for rec in records])
            rep = score_records(records, ungraded=ev.ungraded, n_bootstrap=ev.n_bootstrap, seed=ev.seed).to_json()
            out[label] = {
                k: rep[k]
                for k in (
                    "overall_score",
                    "overall_score:bootstrap_std",
                    "overall_score:n_samples",
                    "n_examples",
                    "n_scored",
                    "n_ungraded",
                    "n_unscorable",
                )
            }
            out[label]["mean_response_words"] = sum(len(r.split()) for r in responses) / max(1, len(responses))
            per_example[label] = [
                score_example(r.prompt_id, r.criteria(), r.verdicts(), r.example_tags, ev.ungraded).overall
                for r in records
            ]
            print(
                f"[eval] {label}: overall_score {rep['overall_score']:.4f} +- {rep['overall_score:bootstrap_std']:.4f} "
                f"(n={rep['overall_score:n_samples']}, ungraded verdicts {rep['n_ungraded']})",
                flush=True,
            )
    both = [(b, a) for b, a in zip(per_example["before"], per_example["after"]) if b is not None and a is not None]
    if both:
        diff, lo, hi = paired_diff_ci([b for b, _ in both], [a for _, a in both], ev.n_bootstrap, ev.seed)
        out["difference"] = {"after_minus_before": diff, "ci95_low": lo, "ci95_high": hi, "n_paired": len(both)}
    return out
