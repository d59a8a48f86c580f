"""Judge throughput against a real vLLM server: the HTTP judge alone, or compared with a naive grader.

Plain run: starts ``VLLMServer`` (or uses ``--base-url``), grades N verdicts (one HealthBench criterion
each, from the offline 500-example copy, ideal completions as responses) at a given concurrency through
``build_judge`` + ``grade_many``, and prints verdicts/s, latency and tokens/s::

    .venv/bin/python benchmarks/judge_throughput.py --n 16 --concurrency 4

``--compare naive``: one server, one set of (conversation, response, criterion) from HealthBench-500
(``--examples`` examples with all their criteria), temperature 0, graded three times on the same server:

(a) naive: what simple-evals and MrlX do: one request per criterion, each a fresh prompt (its own
    delimiter nonce in the instructions, so no two prompts share a cacheable prefix), no dedupe;
(b) rubricrl binary: one request per criterion, one nonce per response, criterion last, a response's
    criteria dispatched together, identical requests graded once;
(c) rubricrl batch: one request per response (all criteria as a JSON list), per-criterion fallback.

For each it prints criteria/s, the ratio to naive, prompt tokens computed vs served from the prefix cache
(vLLM's own counters, ``vllm:prompt_tokens_by_source`` on ``/metrics``), verdict agreement with (a),
and the limit: prefilling each unique prefix once plus each prompt's own suffix, and decoding the verdict
tokens, at the measured rates. The prefill rate is measured with the naive prompts behind a random first
line (nothing cached) and one output token; the decode rate is what the naive run leaves after its
prefill at that rate. The prefix cache is reset between runs. ``--json``: the last line is one JSON
object. Same script on a GPU with any model (``--model``, ``--base-url``)::

    .venv/bin/python benchmarks/judge_throughput.py --compare naive --examples 30 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import re
import secrets
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import httpx

# --------------------------------------------------------------------------- server counters


def metric_sum(text: str, name: str, label: str | None = None) -> float | None:
    """Sum of the samples of Prometheus metric ``name`` (``_total`` suffix optional), filtered by a label."""
    total, seen = 0.0, False
    for m in re.finditer(rf"^{re.escape(name)}(?:_total)?(\{{[^}}]*\}})? ([0-9.e+\-]+)$", text, re.M):
        if label is not None and label not in (m.group(1) or ""):
            continue
        total += float(m.group(2))
        seen = True
    return total if seen else None


def counters(base_url: str) -> dict[str, float]:
    """Prompt / generation / prefix-cache token totals from vLLM's /metrics (empty when unavailable)."""
    root = base_url.rsplit("/v1", 1)[0]
    try:
        text = httpx.get(f"{root}/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    want = {
        "prompt_tokens_total": ("vllm:prompt_tokens", None),
        "generation_tokens_total": ("vllm:generation_tokens", None),
        "prompt_tokens_computed": ("vllm:prompt_tokens_by_source", 'source="local_compute"'),
        "prompt_tokens_cache_hit": ("vllm:prompt_tokens_by_source", 'source="local_cache_hit"'),
        "prefix_cache_queries": ("vllm:prefix_cache_queries", None),
        "prefix_cache_hits": ("vllm:prefix_cache_hits", None),
    }
    out = {}
    for key, (name, label) in want.items():
        v = metric_sum(text, name, label)
        if v is not None:
            out[key] = v
    return out


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}


def token_counters(base_url: str) -> dict[str, float]:
    """Prompt and generation token totals (the plain run's figures)."""
    c = counters(base_url)
    return {k: c[k] for k in ("prompt_tokens_total", "generation_tokens_total") if k in c}


def reset_prefix_cache(base_url: str) -> bool:
    """Empty the server's prefix cache (needs ``VLLM_SERVER_DEV_MODE=1`` on the server)."""
    root = base_url.rsplit("/v1", 1)[0]
    try:
        return httpx.post(f"{root}/reset_prefix_cache", timeout=30).status_code == 200
    except httpx.HTTPError:
        return False


# --------------------------------------------------------------------------- data


def examples_with_responses(k: int, response_chars: int) -> list:
    """The ``k`` HealthBench-500 examples with the shortest prompts that have an ideal completion."""
    from rubricrl.data.healthbench import load_examples, offline_path

    examples = sorted(
        load_examples(offline_path()), key=lambda e: (sum(len(m["content"]) for m in e.prompt), e.prompt_id)
    )
    chosen = [e for e in examples if e.ideal_completion][:k]
    return [(e, e.ideal_completion[:response_chars]) for e in chosen]


def build_requests(n: int, response_chars: int) -> list:
    from rubricrl.data.healthbench import load_examples, offline_path
    from rubricrl.judge import GradingRequest

    examples = sorted(
        load_examples(offline_path()), key=lambda e: (sum(len(m["content"]) for m in e.prompt), e.prompt_id)
    )
    reqs = []
    for ex in examples:
        response = (ex.ideal_completion or "Please talk to a doctor about this.")[:response_chars]
        for c in ex.rubric.criteria:
            reqs.append(GradingRequest(conversation=ex.prompt, response=response, criteria=[c], rubric_id=ex.prompt_id))
            if len(reqs) == n:
                return reqs
    return reqs


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = ""
    try:
        import subprocess

        names = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        gpu = f", GPU {names}" if names else ""
    except (OSError, ValueError, Exception):  # noqa: BLE001 - no GPU tools: a CPU machine
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return (
        f"{platform.node()}: {cpu}, {ncpu} CPUs available{gpu}, {platform.system()} {platform.release()}, "
        f"load average {load:.1f} at the start"
    )


# --------------------------------------------------------------------------- plain run


def run_plain(args: argparse.Namespace, base_url: str, model: str) -> dict:
    from rubricrl.judge import JudgeConfig, build_judge, close_judge, grade_many

    cfg = JudgeConfig(
        backend="openai",
        base_url=base_url,
        model=model,
        retries=args.retries,
        concurrency=args.concurrency,
        timeout_s=120,
        sampling={"temperature": args.temperature, "max_tokens": args.max_tokens},
        structured_output=args.structured,
    )
    requests = build_requests(args.n, args.response_chars)
    judge = build_judge(cfg)
    before = token_counters(base_url)
    t0 = time.monotonic()
    try:
        results = grade_many(judge, requests)
    finally:
        close_judge(judge)
    wall = time.monotonic() - t0
    after = token_counters(base_url)
    stats = judge.stats.as_dict()
    verdicts = [v for vs in results for v in vs]
    tokens = {k: after[k] - before.get(k, 0.0) for k in after}
    return {
        "verdicts": len(verdicts),
        "graded": sum(1 for v in verdicts if not v.ungraded),
        "ungraded": sum(1 for v in verdicts if v.ungraded),
        "wall_s": round(wall, 2),
        "verdicts_per_s": round(len(verdicts) / wall, 3),
        "mean_call_latency_s": round(stats["mean_latency_s"], 2),
        "calls": int(stats["calls"]),
        "retries": int(stats["retries"]),
        "prompt_tokens": tokens.get("prompt_tokens_total"),
        "generation_tokens": tokens.get("generation_tokens_total"),
        "generation_tokens_per_s": round(tokens["generation_tokens_total"] / wall, 1)
        if "generation_tokens_total" in tokens
        else None,
        "total_tokens_per_s": round(sum(tokens.values()) / wall, 1) if tokens else None,
    }


# --------------------------------------------------------------------------- comparison


class Recording:
    """A chat backend wrapper that keeps every prompt sent (for the token accounting of the limit)."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.model = inner.model
        self.prompts: list[str] = []

    async def complete(self, messages: list[dict[str, str]], **sampling: Any) -> str:
        self.prompts.append(messages[-1]["content"])
        return await self.inner.complete(messages, **sampling)

    async def aclose(self) -> None:
        await self.inner.aclose()


def grade_run(kind: str, items: list, args: argparse.Namespace, base_url: str, model: str) -> dict:
    """Grade every (example, response) of ``items`` the ``kind`` way; verdicts keyed by (prompt_id, criterion)."""
    from rubricrl.judge import GradingRequest, grade_many
    from rubricrl.judge.backends.openai_http import OpenAIChatBackend
    from rubricrl.judge.build import run_sync
    from rubricrl.judge.llm import LLMJudge

    max_tokens = args.batch_max_tokens if kind == "batch" else args.max_tokens
    backend = Recording(
        OpenAIChatBackend(model, base_url, timeout_s=args.timeout_s, max_connections=max(args.concurrency, 1))
    )
    judge = LLMJudge(
        backend,
        mode="batch" if kind == "batch" else "binary",
        retries=args.retries,
        timeout_s=args.timeout_s,
        concurrency=args.concurrency,
        structured_output=args.structured,
        sampling={"temperature": args.temperature, "max_tokens": max_tokens, "seed": 0},
    )
    if kind == "naive":  # one request per criterion: each grade() draws its own nonce, nothing is shared
        requests = [
            GradingRequest(conversation=e.prompt, response=r, criteria=[c], rubric_id=e.prompt_id)
            for e, r in items
            for c in e.rubric.criteria
        ]
    else:
        requests = [
            GradingRequest(conversation=e.prompt, response=r, criteria=list(e.rubric.criteria), rubric_id=e.prompt_id)
            for e, r in items
        ]
    reset = reset_prefix_cache(base_url)
    before = counters(base_url)
    t0 = time.monotonic()
    try:
        results = grade_many(judge, requests)
    finally:
        run_sync(judge.aclose())
    wall = time.monotonic() - t0
    time.sleep(1.0)  # let the server's stats logger publish the last requests
    tokens = delta(counters(base_url), before)
    verdicts = {}
    for req, vs in zip(requests, results):
        for c, v in zip(req.criteria, vs):
            verdicts[(req.rubric_id, c.id)] = v
    n = len(verdicts)
    return {
        "kind": kind,
        "wall_s": wall,
        "criteria": n,
        "criteria_per_s": n / wall,
        "tokens": tokens,
        "calls": judge.stats.calls,
        "retries": judge.stats.retries,
        "graded": sum(not v.ungraded for v in verdicts.values()),
        "ungraded": sum(v.ungraded for v in verdicts.values()),
        "batch_fallbacks": judge.stats.batch_fallbacks,
        "verdicts": verdicts,
        "prompts": backend.prompts,
        "cache_reset": reset,
    }


def agreement(run: dict, ref: dict) -> tuple[float | None, int]:
    """Share of criteria graded by both runs on which they agree (``met``), and that number of criteria."""
    both = [
        (run["verdicts"][k].met, v.met)
        for k, v in ref["verdicts"].items()
        if k in run["verdicts"] and not v.ungraded and not run["verdicts"][k].ungraded
    ]
    if not both:
        return None, 0
    return sum(a == b for a, b in both) / len(both), len(both)


def tokenize(base_url: str, model: str, prompts: list[str]) -> list[list[int]]:
    """Token ids of each prompt as the server renders it (chat template, generation prompt)."""
    root = base_url.rsplit("/v1", 1)[0]
    out = []
    with httpx.Client(timeout=60) as client:
        for p in prompts:
            r = client.post(
                f"{root}/tokenize",
                json={"model": model, "messages": [{"role": "user", "content": p}], "add_generation_prompt": True},
            )
            r.raise_for_status()
            out.append(r.json()["tokens"])
    return out


def prefix_accounting(base_url: str, model: str, prompts: list[str]) -> dict[str, int]:
    """Unique-prefix and suffix tokens of a run's prompts: prompts sharing a delimiter nonce form one group;
    its common token prefix counts once, the rest of each prompt counts in full."""
    groups: dict[str, list[str]] = {}
    for p in dict.fromkeys(prompts):  # a retry repeats a prompt exactly: the cache serves all of it
        m = re.search(r"<(turn-[0-9a-f]{12})\b", p)
        groups.setdefault(m.group(1) if m else p, []).append(p)
    prefix = suffix = 0
    for ps in groups.values():
        toks = tokenize(base_url, model, ps)
        common = len(os.path.commonprefix(toks)) if len(toks) > 1 else 0
        prefix += common
        suffix += sum(len(t) - common for t in toks)
    return {"unique_prefix_tokens": prefix, "suffix_tokens": suffix, "prompts": len(prompts)}


def measure_prefill_rate(base_url: str, model: str, prompts: list[str], concurrency: int) -> float:
    """Prompt tokens/s with nothing cached: ``prompts`` behind a random first line, one output token each."""
    from rubricrl.judge.backends.openai_http import OpenAIChatBackend

    async def go() -> None:
        backend = OpenAIChatBackend(model, base_url, timeout_s=600, max_connections=concurrency)
        sem = asyncio.Semaphore(concurrency)

        async def one(p: str) -> None:
            async with sem:
                await backend.complete(
                    [{"role": "user", "content": f"[{secrets.token_hex(8)}]\n{p}"}], temperature=0.0, max_tokens=1
                )

        try:
            await asyncio.gather(*(one(p) for p in prompts))
        finally:
            await backend.aclose()

    before = counters(base_url)
    t0 = time.monotonic()
    asyncio.run(go())
    wall = time.monotonic() - t0
    time.sleep(1.0)
    d = delta(counters(base_url), before)
    computed = d.get("prompt_tokens_computed") or d.get("prompt_tokens_total") or 0.0
    return computed / wall


def compare(args: argparse.Namespace, base_url: str, model: str) -> dict:
    items = examples_with_responses(args.examples, args.response_chars)
    if args.batch_max_tokens is None:  # a mean-sized rubric's items get a binary verdict's explanation budget
        args.batch_max_tokens = round(args.max_tokens * sum(len(e.rubric.criteria) for e, _ in items) / len(items))
    kinds = ["naive", "binary"] + ([] if args.no_batch else ["batch"])
    runs: dict[str, dict] = {}
    # The three graders take turns on chunks of examples, so a change in the machine's load (other jobs)
    # falls on all three alike; each run starts with an empty prefix cache.
    chunks = [items[i : i + args.chunk] for i in range(0, len(items), args.chunk)]
    for n, chunk in enumerate(chunks, 1):
        for kind in kinds:
            print(f"{time.strftime('%H:%M:%S')} chunk {n}/{len(chunks)}: {kind} ...", file=sys.stderr, flush=True)
            r = grade_run(kind, chunk, args, base_url, model)
            acc = runs.setdefault(
                kind,
                {
                    "kind": kind,
                    "wall_s": 0.0,
                    "tokens": {},
                    "calls": 0,
                    "retries": 0,
                    "graded": 0,
                    "ungraded": 0,
                    "batch_fallbacks": 0,
                    "verdicts": {},
                    "prompts": [],
                    "cache_reset": True,
                },
            )
            for k in ("wall_s", "calls", "retries", "graded", "ungraded", "batch_fallbacks"):
                acc[k] += r[k]
            for k, v in r["tokens"].items():
                acc["tokens"][k] = acc["tokens"].get(k, 0.0) + v
            acc["verdicts"].update(r["verdicts"])
            acc["prompts"] += r["prompts"]
            acc["cache_reset"] = acc["cache_reset"] and r["cache_reset"]
    for r in runs.values():
        r["criteria"] = len(r["verdicts"])
        r["criteria_per_s"] = r["criteria"] / r["wall_s"]
    naive = runs["naive"]
    prefill_rate = measure_prefill_rate(base_url, model, naive["prompts"][: args.calibration_prompts], args.concurrency)
    nt = naive["tokens"]
    naive_prefill_s = (nt.get("prompt_tokens_computed") or nt.get("prompt_tokens_total", 0.0)) / prefill_rate
    decode_s = max(naive["wall_s"] - naive_prefill_s, 1e-6)
    decode_rate = nt.get("generation_tokens_total", 0.0) / decode_s
    out: dict[str, Any] = {
        "examples": len(items),
        "criteria": naive["criteria"],
        "prefill_tokens_per_s": round(prefill_rate, 1),
        "decode_tokens_per_s": round(decode_rate, 1),
        "runs": {},
    }
    for kind, r in runs.items():
        acc = prefix_accounting(base_url, model, r["prompts"])
        gen = r["tokens"].get("generation_tokens_total", 0.0)
        limit_s = (acc["unique_prefix_tokens"] + acc["suffix_tokens"]) / prefill_rate + gen / decode_rate
        agree, n_agree = agreement(r, naive) if kind != "naive" else (1.0, naive["graded"])
        row = {
            "criteria_per_s": round(r["criteria_per_s"], 3),
            "ratio_vs_naive": round(r["criteria_per_s"] / naive["criteria_per_s"], 2),
            "wall_s": round(r["wall_s"], 1),
            "calls": r["calls"],
            "retries": r["retries"],
            "graded": r["graded"],
            "ungraded": r["ungraded"],
            "batch_fallbacks": r["batch_fallbacks"],
            "prompt_tokens": r["tokens"].get("prompt_tokens_total"),
            "prompt_tokens_computed": r["tokens"].get("prompt_tokens_computed"),
            "prompt_tokens_from_cache": r["tokens"].get("prompt_tokens_cache_hit"),
            "generation_tokens": gen,
            "agreement_vs_naive": round(agree, 4) if agree is not None else None,
            "agreement_n": n_agree,
            "limit_s": round(limit_s, 1),
            "limit_criteria_per_s": round(r["criteria"] / limit_s, 3) if limit_s else None,
            "share_of_limit": round(limit_s / r["wall_s"], 2),
            "cache_reset_before": r["cache_reset"],
            **acc,
        }
        out["runs"][kind] = row
    for kind in kinds[1:]:
        out[f"ratio_{kind}_vs_naive"] = out["runs"][kind]["ratio_vs_naive"]
        out[f"agreement_{kind}_vs_naive"] = out["runs"][kind]["agreement_vs_naive"]
    return out


def print_compare(figures: dict) -> None:
    print(
        f"set: {figures['examples']} HealthBench-500 examples, {figures['criteria']} criteria; measured rates: "
        f"prefill {figures['prefill_tokens_per_s']} tok/s (nothing cached), decode {figures['decode_tokens_per_s']} "
        f"tok/s (naive run after its prefill)"
    )
    head = (
        "run",
        "crit/s",
        "x naive",
        "wall s",
        "calls",
        "ungraded",
        "prompt tok computed",
        "from cache",
        "gen tok",
        "agree w/ naive",
        "limit s",
        "limit crit/s",
    )
    print(" | ".join(head))
    for kind, r in figures["runs"].items():
        agree = (
            "-"
            if kind == "naive"
            else (
                f"{100 * r['agreement_vs_naive']:.1f}% of {r['agreement_n']}"
                if r["agreement_vs_naive"] is not None
                else "n/a"
            )
        )
        print(
            " | ".join(
                str(x)
                for x in (
                    kind,
                    r["criteria_per_s"],
                    r["ratio_vs_naive"],
                    r["wall_s"],
                    r["calls"],
                    r["ungraded"],
                    r["prompt_tokens_computed"],
                    r["prompt_tokens_from_cache"],
                    r["generation_tokens"],
                    agree,
                    r["limit_s"],
                    r["limit_criteria_per_s"],
                )
            )
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--compare", choices=["naive"], help="grade one set three ways (naive, binary, batch)")
    p.add_argument("--examples", type=int, default=30, help="--compare: HealthBench-500 examples, all criteria")
    p.add_argument("--no-batch", action="store_true", help="--compare: skip the batch run")
    p.add_argument(
        "--batch-max-tokens",
        type=int,
        help="--compare: max_tokens of a batch call "
        "(default: --max-tokens times the mean number of criteria per example)",
    )
    p.add_argument("--chunk", type=int, default=5, help="--compare: examples per turn of the three graders")
    p.add_argument("--calibration-prompts", type=int, default=24, help="--compare: prompts for the prefill rate")
    p.add_argument("--json", action="store_true", help="last line: one JSON object with all figures")
    p.add_argument("--model", default="smollm2-135m-instruct", help="alias or checkpoint directory to serve")
    p.add_argument("--base-url", help="use this running server instead of starting one")
    p.add_argument("--served-model-name", help="model name on --base-url (default: --model)")
    p.add_argument("--n", type=int, default=16, help="plain run: verdicts to grade (one criterion each)")
    p.add_argument("--concurrency", type=int, default=4, help="judge calls in flight")
    p.add_argument("--max-tokens", type=int, default=96)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--retries", type=int, default=1)
    p.add_argument("--timeout-s", type=float, default=300.0)
    p.add_argument("--response-chars", type=int, default=1200, help="truncate graded responses to this length")
    p.add_argument(
        "--no-structured",
        dest="structured",
        action="store_false",
        help="free-text verdicts (no JSON-schema response_format)",
    )
    p.add_argument("--threads", type=int, help="server CPU threads (default: all available)")
    p.add_argument("--max-num-seqs", type=int, help="server batch limit")
    p.add_argument("--max-model-len", type=int, default=4096)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    where = machine()
    from rubricrl.judge.vllm_server import VLLMServer

    server = None
    if args.base_url:
        base_url, model = args.base_url, args.served_model_name or args.model
    else:
        server = VLLMServer(
            args.model,
            threads=args.threads,
            max_num_seqs=args.max_num_seqs,
            max_model_len=args.max_model_len,
            log_stats=True,
            prefix_caching=True,
            env={"VLLM_SERVER_DEV_MODE": "1"},
        ).start()  # dev mode: /reset_prefix_cache
        base_url, model = server.base_url, server.served_model_name
    try:
        figures = compare(args, base_url, model) if args.compare else run_plain(args, base_url, model)
    finally:
        if server is not None:
            server.stop()
    figures["server_startup_s"] = server.startup_s if server else None
    figures["load_average_end"] = round(os.getloadavg()[0], 1)
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: {where}")
    print(
        f"settings: model={args.model} concurrency={args.concurrency} max_tokens={args.max_tokens} "
        f"temperature={args.temperature} structured={args.structured} response_chars={args.response_chars} "
        f"retries={args.retries}"
        + (
            f" examples={args.examples} chunk={args.chunk} batch_max_tokens={args.batch_max_tokens}"
            if args.compare
            else f" n={args.n}"
        )
    )
    if args.compare:
        print_compare(figures)
    else:
        for k, v in figures.items():
            print(f"{k}: {v}")
    if args.json or not args.compare:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
