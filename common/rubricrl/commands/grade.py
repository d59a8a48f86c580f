"""``rubricrl grade``: grade responses to HealthBench examples with a judge, into a graded JSONL file.

Resumable and crash-safe: each graded example is appended as one fsync'd line as soon as its verdicts
are in; a re-run skips prompt_ids already in ``--out``; SIGINT/SIGTERM stop the run, keeping every line
written. ``--retry-ungraded`` re-grades only the ungraded items of existing records and rewrites the
file atomically. ``--out`` is only written to when ``<out>.manifest.json`` proves it is this command's
output for the same data and judge (and the same responses for every graded record); a graded file from
an earlier rubricrl without a manifest is adopted only when all of its lines are complete records of the
same data, responses and judge. Anything else is refused (exit 2) and left byte for byte as it was.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rubricrl.commands.common import accept_trailing_overrides, parse_overrides, run_interruptible
from rubricrl.configs import config_path
from rubricrl.data.healthbench import load_examples
from rubricrl.errors import Problems, UserError
from rubricrl.jsonl import iter_jsonl
from rubricrl.judge import build_judge
from rubricrl.judge.config import JudgeConfig, judge_summary, load_judge_config
from rubricrl.outputs import Claim, OwnedOutput, claim, digest_file, digest_json
from rubricrl.progress import progress_bar
from rubricrl.rubrics.importers import HealthBenchExample
from rubricrl.scoring.graded import GradedFile, GradedRecord, make_record, read_graded
from rubricrl.types import GradingRequest, Verdict

log = logging.getLogger(__name__)
EXIT_UNGRADED = 3
SUMMARY_KEYS = ("backend", "model", "mode", "template", "template_sha256")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "grade",
        help="grade responses to HealthBench examples with a judge (resumable)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, type=Path, help="HealthBench examples (JSONL, as published)")
    p.add_argument("--responses", help="JSONL of {prompt_id, response}, or 'ideal' for the examples' ideal completions")
    p.add_argument(
        "--judge",
        required=True,
        help="judge config (JUDGE.yaml), or a shipped name: smollm2-vllm, smollm2-local, gpt41-healthbench",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="override a judge config key (dotted keys, YAML values), e.g. sampling.temperature=0.6; "
        "the same KEY=VALUE style as rubricrl replicate, anywhere on the line",
    )
    p.add_argument(
        "--judge-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="older spelling of a KEY=VALUE override (still accepted)",
    )
    p.add_argument("--out", required=True, type=Path, help="graded JSONL (created, or resumed when it exists)")
    p.add_argument(
        "--limit", type=int, metavar="N", help="only the first N examples (in data order) that have a response"
    )
    p.add_argument("--retry-ungraded", action="store_true", help="re-grade only the ungraded items already in --out")
    p.add_argument(
        "--fail-on-ungraded", action="store_true", help="exit 3 when --out holds ungraded verdicts at the end"
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress display (a bar on a terminal, a line every 30 s in logs)",
    )
    accept_trailing_overrides(p)
    return p


# ----------------------------------------------------------------------------------------- inputs


def load_responses(path: Path) -> dict[str, str]:
    """Read ``{prompt_id, response}`` lines; problems are reported as ``path:line``."""
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    problems: list[str] = []
    for lineno, obj, bad in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if bad:
            problems.append(f"{where}: {bad}")
        elif not isinstance(obj, dict):
            problems.append(f"{where}: expected a JSON object with 'prompt_id' and 'response'")
        elif not isinstance(obj.get("prompt_id"), str) or not obj["prompt_id"]:
            problems.append(f"{where}: 'prompt_id' missing or not a string")
        elif not isinstance(obj.get("response"), str):
            problems.append(f"{where}: 'response' missing or not a string")
        elif obj["prompt_id"] in first:
            problems.append(
                f"{where}: duplicate prompt_id {obj['prompt_id']!r} (first on line {first[obj['prompt_id']]})"
            )
        else:
            first[obj["prompt_id"]] = lineno
            out[obj["prompt_id"]] = obj["response"]
    if problems:
        raise Problems(problems)
    return out


def read_existing(out: Path) -> GradedFile | None:
    """The graded file at ``out``, or None; refuses anything that is not a graded file (changing nothing)."""
    if not out.exists():
        return None
    if not out.is_file():
        raise UserError("exists and is not a regular file; choose another --out", path=str(out))
    if out.stat().st_size == 0:
        return GradedFile(out, [])
    try:
        return read_graded(out)
    except Problems as e:
        shown = "\n  ".join(e.problems[:3])
        raise UserError(
            f"refusing to write: the file exists and is not a valid graded file (nothing was changed); "
            f"choose another --out or fix it:\n  {shown}",
            path=str(out),
        ) from None


def judge_digest(summary: dict[str, Any]) -> str:
    """What identifies the judge of a graded file (the keys mixing is refused on)."""
    return digest_json({k: summary.get(k) for k in SUMMARY_KEYS})


def claim_out(
    args: argparse.Namespace,
    by_id: dict[str, HealthBenchExample],
    summary: dict[str, Any],
    responses: dict[str, str] | None,
) -> tuple[Claim, GradedFile | None]:
    """Prove ``--out`` is this command's own output for these inputs, or refuse; changes nothing."""
    inputs = {"data_sha256": digest_file(args.data), "judge_sha256": judge_digest(summary)}
    if responses is not None:
        inputs["responses_sha256"] = digest_json(sorted(responses.items()))
    # A grown responses file (generate resumed with a larger --limit) is fine: check_same_data compares
    # the response of every graded record with --responses, and names the judge setting that differs.
    c = claim(args.out, "grade", inputs, lenient={"responses_sha256", "judge_sha256"})
    if not c.raw:
        return c, None
    existing = read_existing(args.out)
    assert existing is not None
    check_same_data(existing, by_id, summary, responses)
    if c.legacy:
        _check_legacy(args.out, existing)
        print(
            f"{args.out}: no manifest (written by an earlier rubricrl); all {len(existing.records)} records match "
            "--data, --responses and the judge, so it is resumed and a manifest is added",
            file=sys.stderr,
        )
    elif existing.truncated_tail:
        print(f"{args.out}: last line was incomplete (interrupted write); it will be re-graded", file=sys.stderr)
    return c, existing


def _check_legacy(out: Path, existing: GradedFile) -> None:
    """A file with no manifest is resumed only when it is wholly complete ``rubricrl grade`` output."""
    if existing.truncated_tail:
        raise UserError(
            f"refusing to write: the last line is incomplete and there is no manifest ({out.name}.manifest.json) "
            f"proving the file is rubricrl grade output (nothing was changed). If it is an interrupted graded file "
            f"from an earlier rubricrl, cut it to its complete lines (`truncate -s {existing.good_bytes} {out}`) "
            "and re-run; otherwise choose another --out",
            path=str(out),
        )
    if not existing.records:
        raise UserError(
            "refusing to write: the file is not empty and holds no graded records (nothing was "
            "changed); choose another --out",
            path=str(out),
        )
    for r in existing.records:
        if not isinstance(r.data.get("judge"), dict):
            raise UserError(
                f"{out}:{r.line}: refusing to write: this graded record names no judge, so it was not "
                "written by `rubricrl grade` (nothing was changed); choose another --out"
            )


def check_same_data(
    existing: GradedFile,
    examples: dict[str, HealthBenchExample],
    summary: dict[str, Any],
    responses: dict[str, str] | None,
) -> None:
    """Refuse to append to a graded file of other data, other responses or another judge."""
    for r in existing.records:
        where = f"{existing.path}:{r.line}"
        ex = examples.get(r.prompt_id)
        if ex is None or ex.raw.get("rubrics") != r.data.get("rubrics"):
            why = "is not in --data" if ex is None else "has other rubrics in --data"
            raise UserError(
                f"{where}: prompt_id {r.prompt_id!r} {why}; --out holds grades of other data "
                "(nothing was changed); choose another --out"
            )
        if responses is not None and r.prompt_id in responses and responses[r.prompt_id] != r.response:
            raise UserError(
                f"{where}: the response to {r.prompt_id!r} differs from --responses; --out holds grades "
                "of other responses (nothing was changed); choose another --out"
            )
        theirs = r.data.get("judge")
        if isinstance(theirs, dict):
            diff = [k for k in SUMMARY_KEYS if k in theirs and k in summary and theirs[k] != summary[k]]
            if diff:
                raise UserError(
                    f"{where}: graded by another judge ({', '.join(f'{k}={theirs[k]!r}' for k in diff)}); "
                    "mixing judges in one file is refused (nothing was changed); choose another --out"
                )


# ---------------------------------------------------------------------------------------- grading


def _build_judge(cfg: JudgeConfig) -> Any:
    return build_judge(cfg)


@dataclass
class Job:
    example: HealthBenchExample
    response: str
    indices: list[int]  # rubric item indices to grade
    record: GradedRecord | None = None  # the existing record (retry mode)


@dataclass
class RunStats:
    examples: int = 0
    verdicts: int = 0
    ungraded: int = 0
    calls: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, verdicts: list[Verdict]) -> None:
        self.examples += 1
        self.verdicts += len(verdicts)
        self.ungraded += sum(1 for v in verdicts if v.ungraded)
        self.calls += sum(v.attempts for v in verdicts if not v.cached)
        self.latencies += [v.latency_s for v in verdicts if not v.cached and v.attempts]


def request_for(job: Job) -> GradingRequest:
    crit = job.example.rubric.criteria
    return GradingRequest(
        conversation=job.example.prompt,
        response=job.response,
        criteria=[crit[i] for i in job.indices],
        rubric_id=job.example.prompt_id,
        metadata={"prompt_id": job.example.prompt_id},
    )


async def grade_jobs(
    judge: Any, jobs: list[Job], on_done: Callable[[Job, list[Verdict]], None], concurrency: int
) -> None:
    """Grade ``jobs`` with at most ``concurrency`` examples in flight; ``on_done`` runs as each finishes.

    ``on_done`` runs in the event loop between awaits, so a cancellation (SIGINT/SIGTERM) can never cut
    a write in half. The judge is closed at the end, whatever happens.
    """
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for j in jobs:
        queue.put_nowait(j)

    async def worker() -> None:
        while not queue.empty():
            job = queue.get_nowait()
            verdicts = list(await judge.grade(request_for(job)))
            if len(verdicts) != len(job.indices):
                raise RuntimeError(f"judge returned {len(verdicts)} verdicts for {len(job.indices)} criteria")
            on_done(job, verdicts)

    tasks = [asyncio.create_task(worker()) for _ in range(max(1, min(concurrency, len(jobs))))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        close = getattr(judge, "aclose", None)
        if close is not None:
            await close()


def _progress(total: int, disable: bool) -> Any:
    return progress_bar(total, "grading", unit="ex", disable=disable)


# -------------------------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    examples = load_examples(args.data)
    by_id = {ex.prompt_id: ex for ex in examples}
    items = [*args.overrides, *args.judge_set]
    cfg = load_judge_config(
        config_path("judge", args.judge), parse_overrides(items, "override") or None, overrides_flag="override"
    )
    summary = judge_summary(cfg)
    if args.limit is not None and args.limit < 0:
        raise UserError("--limit must be >= 0")
    if args.retry_ungraded:
        responses = None
    elif args.responses is None:
        raise UserError("--responses is required (a JSONL of {prompt_id, response}, or 'ideal')")
    elif args.responses == "ideal":
        responses = {ex.prompt_id: ex.ideal_completion for ex in examples if ex.ideal_completion is not None}
    else:
        responses = load_responses(Path(args.responses))
    if responses is not None and not any(pid in by_id for pid in responses):
        raise UserError(
            f"none of the {len(responses)} responses has an example in {args.data} (no prompt_id "
            "matches); check that --responses answers --data",
            path=str(args.responses),
        )
    owner, existing = claim_out(args, by_id, summary, responses)
    if args.retry_ungraded:
        return _retry(args, cfg, owner, existing, by_id)

    assert responses is not None
    unknown = [pid for pid in responses if pid not in by_id]
    if unknown:
        print(
            f"warning: {len(unknown)} responses have no example in {args.data} (e.g. {unknown[0]!r}); ignored",
            file=sys.stderr,
        )
    missing = [ex.prompt_id for ex in examples if ex.prompt_id not in responses]
    if missing:
        print(
            f"note: {len(examples) - len(missing)} of {len(examples)} examples have a response and are graded; "
            f"the other {len(missing)} (e.g. {missing[0]!r}) are not",
            file=sys.stderr,
        )
    selected = [ex for ex in examples if ex.prompt_id in responses]
    if args.limit is not None:
        selected = selected[: args.limit]
    done = set(existing.by_prompt_id()) if existing else set()
    jobs = [
        Job(ex, responses[ex.prompt_id], list(range(len(ex.rubric.criteria))))
        for ex in selected
        if ex.prompt_id not in done
    ]
    skipped = len(selected) - len(jobs)

    stats = RunStats()
    signame = None
    judge = _build_judge(cfg) if jobs else None
    writer = OwnedOutput(owner, keep=existing.good_bytes if existing else None)
    try:
        if jobs:
            bar = _progress(len(jobs), args.no_progress)

            def on_done(job: Job, verdicts: list[Verdict]) -> None:
                writer.append(make_record(job.example.raw, job.response, verdicts, summary).to_line())
                stats.add(verdicts)
                bar.update(1)
                bar.set_postfix(ungraded=stats.ungraded, refresh=False)

            try:
                signame = run_interruptible(lambda: grade_jobs(judge, jobs, on_done, cfg.concurrency))
            finally:
                bar.close()
    finally:
        writer.close()
    _print_summary(args.out, stats, skipped, len(missing), signame, judge=judge)
    if signame:
        return 130 if signame == "SIGINT" else 143
    return _final_exit(args)


def _retry(
    args: argparse.Namespace,
    cfg: JudgeConfig,
    owner: Claim,
    existing: GradedFile | None,
    by_id: dict[str, HealthBenchExample],
) -> int:
    if existing is None or not existing.records:
        raise UserError("--retry-ungraded: nothing graded yet", path=str(args.out))
    writer = OwnedOutput(owner, keep=existing.good_bytes)  # a manifest for an adopted file; drops a torn tail
    records = existing.records
    jobs = [
        Job(by_id[r.prompt_id], r.response, [i for i, g in enumerate(r.grades) if g.get("criteria_met") is None], r)
        for r in records
        if r.n_ungraded
    ]
    if args.limit is not None:
        jobs = jobs[: args.limit]
    stats = RunStats()
    signame = None
    summary = judge_summary(cfg)
    changed = False  # a torn last line was already cut off by OwnedOutput
    judge = None
    if jobs:
        judge = _build_judge(cfg)
        bar = _progress(len(jobs), args.no_progress)

        def on_done(job: Job, verdicts: list[Verdict]) -> None:
            nonlocal changed
            assert job.record is not None
            for i, v in zip(job.indices, verdicts):
                job.record.grades[i] = v.to_json()
            job.record.data["judge"] = summary
            changed = True
            stats.add(verdicts)
            bar.update(1)

        try:
            signame = run_interruptible(lambda: grade_jobs(judge, jobs, on_done, cfg.concurrency))
        finally:
            bar.close()
            if changed:  # also after an interruption: keep what was re-graded
                writer.rewrite(r.to_line() for r in records)
    writer.close()
    _print_summary(args.out, stats, 0, 0, signame, retried=True, judge=judge)
    if signame:
        return 130 if signame == "SIGINT" else 143
    return _final_exit(args)


def _print_summary(
    out: Path,
    stats: RunStats,
    skipped: int,
    no_response: int,
    signame: str | None,
    retried: bool = False,
    judge: Any = None,
) -> None:
    verb = "re-graded ungraded items of" if retried else "graded"
    line = f"{verb} {stats.examples} examples"
    extra = []
    if skipped:
        extra.append(f"{skipped} already in {out}, skipped")
    if no_response:
        extra.append(f"{no_response} without a response")
    print(line + (f" ({'; '.join(extra)})" if extra else ""))
    print(f"verdicts: {stats.verdicts} (ungraded: {stats.ungraded})")
    calls = stats.calls
    lat = sum(stats.latencies) / len(stats.latencies) if stats.latencies else 0.0
    extra_stats = ""
    js = getattr(judge, "stats", None)
    if js is not None and hasattr(js, "as_dict"):  # the judge's own counters, when it keeps them
        d = js.as_dict()
        calls, lat = int(d.get("calls", calls)), float(d.get("mean_latency_s", lat))
        extra_stats = "".join(
            f", {k.replace('_', ' ')} {int(d[k])}"
            for k in ("retries", "parse_failures", "transport_errors", "cache_hits")
            if d.get(k)
        )
    print(f"judge calls: {calls}, mean latency {lat:.3f} s{extra_stats}")
    if signame:
        print(
            f"interrupted by {signame}: everything graded so far is in {out}; re-run the same command to resume",
            file=sys.stderr,
        )


def _final_exit(args: argparse.Namespace) -> int:
    final = read_graded(args.out) if args.out.exists() and args.out.stat().st_size else None
    total = sum(r.n_ungraded for r in final.records) if final else 0
    n = len(final.records) if final else 0
    print(f"{args.out}: {n} examples, {total} ungraded verdicts in total")
    if total and args.fail_on_ungraded:
        print(f"{total} ungraded verdicts (--fail-on-ungraded); re-grade them with --retry-ungraded", file=sys.stderr)
        return EXIT_UNGRADED
    return 0
