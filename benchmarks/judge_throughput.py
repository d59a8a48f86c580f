"""Judge throughput: verdicts/s, latency and tokens/s of the HTTP judge against a local vLLM server.

Starts ``VLLMServer`` (or uses ``--base-url``), grades N verdicts (one HealthBench criterion each, from
the offline 500-example copy, ideal completions as responses) at a given concurrency through
``build_judge`` + ``grade_many``, and prints the figures with the command and machine they came from.
Tokens come from the server's Prometheus counters (``/metrics``), so they include retries.

    .venv/bin/python benchmarks/judge_throughput.py --n 16 --concurrency 4
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shlex
import sys
import time
from pathlib import Path

import httpx

def token_counters(base_url: str) -> dict[str, float]:
    """Prompt and generation token totals from vLLM's /metrics (empty when unavailable)."""
    root = base_url.rsplit("/v1", 1)[0]
    try:
        text = httpx.get(f"{root}/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    out: dict[str, float] = {}
    for key in ("prompt_tokens_total", "generation_tokens_total"):
        vals = [float(m.group(1)) for m in re.finditer(rf"^vllm:{key}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M)]
        if vals:
            out[key] = sum(vals)
    return out


def build_requests(n: int, response_chars: int) -> list:
    from rubricrl.data.healthbench import load_examples, offline_path
    from rubricrl.judge import GradingRequest

    examples = sorted(load_examples(offline_path()), key=lambda e: (sum(len(m["content"]) for m in e.prompt), e.prompt_id))
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
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{platform.node()}: {cpu}, {ncpu} CPUs available, {platform.system()} {platform.release()}"


def run(args: argparse.Namespace) -> dict:
    from rubricrl.judge import JudgeConfig, build_judge, close_judge, grade_many
    from rubricrl.judge.vllm_server import VLLMServer

    server = None
    if args.base_url:
        base_url, model = args.base_url, args.served_model_name or args.model
    else:
        server = VLLMServer(args.model, threads=args.threads, max_num_seqs=args.max_num_seqs, log_stats=True).start()
        base_url, model = server.base_url, server.served_model_name
    try:
        cfg = JudgeConfig(backend="openai", base_url=base_url, model=model, retries=args.retries,
                          concurrency=args.concurrency, timeout_s=120,
                          sampling={"temperature": args.temperature, "max_tokens": args.max_tokens},
                          structured_output=args.structured)
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
            "generation_tokens_per_s": round(tokens["generation_tokens_total"] / wall, 1) if "generation_tokens_total" in tokens else None,
            "total_tokens_per_s": round(sum(tokens.values()) / wall, 1) if tokens else None,
            "server_startup_s": server.startup_s if server else None,
        }
    finally:
        if server is not None:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m-instruct", help="alias or checkpoint directory to serve")
    p.add_argument("--base-url", help="use this running server instead of starting one")
    p.add_argument("--served-model-name", help="model name on --base-url (default: --model)")
    p.add_argument("--n", type=int, default=16, help="verdicts to grade (one criterion each)")
    p.add_argument("--concurrency", type=int, default=4, help="judge calls in flight")
    p.add_argument("--max-tokens", type=int, default=96)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--retries", type=int, default=1)
    p.add_argument("--response-chars", type=int, default=600, help="truncate graded responses to this length")
    p.add_argument("--no-structured", dest="structured", action="store_false",
                   help="free-text verdicts (no JSON-schema response_format)")
    p.add_argument("--threads", type=int, help="server CPU threads (default: all available)")
    p.add_argument("--max-num-seqs", type=int, help="server batch limit")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    figures = run(args)
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: {machine()}")
    print(f"settings: model={args.model} n={args.n} concurrency={args.concurrency} max_tokens={args.max_tokens} "
          f"structured={args.structured} response_chars={args.response_chars}")
    for k, v in figures.items():
        print(f"{k}: {v}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
