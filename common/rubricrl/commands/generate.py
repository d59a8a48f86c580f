"""``rubricrl generate``: sample policy responses for a prompt file, into a responses JSONL.

The prompt file is HealthBench-format JSONL (``prompt_id`` and ``prompt`` as a list of messages) or any
JSONL with an id (``prompt_id`` or ``id``) and ``prompt`` (messages or a string). Each output line is
``{"prompt_id", "response", "sample", "model"}``; with ``samples: k`` the id of sample i > 0 is
``<prompt_id>#<i>``. Resumable: a re-run skips ids already written; an interrupted run keeps every line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from rubricrl.commands.common import parse_overrides, run_interruptible
from rubricrl.configs import config_path
from rubricrl.errors import Problems, UserError
from rubricrl.generation import Sampler, load_policy_config
from rubricrl.jsonl import iter_jsonl, write_atomic

EXIT_FAILED = 3


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("generate", help="sample policy responses for a prompt JSONL (resumable)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="prompts JSONL (HealthBench format or {id, prompt})")
    p.add_argument("--policy", required=True,
                   help="policy YAML, or a shipped name (smollm2-local, smollm2-vllm); see rubricrl.generation.PolicyConfig")
    p.add_argument("--out", type=Path, required=True, help="responses JSONL to write or resume")
    p.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a policy key (dotted, e.g. sampling.temperature=1.0)")
    p.add_argument("--seed", type=int, default=0, help="base seed; sample i of prompt n uses seed+n*1000+i")
    p.add_argument("--no-progress", action="store_true")
    return p


def load_prompts(path: Path) -> list[tuple[str, list[dict[str, str]]]]:
    """(id, messages) pairs; problems reported as ``path:line``."""
    out, problems, seen = [], [], {}
    for lineno, obj, bad in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if bad:
            problems.append(f"{where}: {bad}")
            continue
        pid = obj.get("prompt_id", obj.get("id")) if isinstance(obj, dict) else None
        prompt = obj.get("prompt") if isinstance(obj, dict) else None
        if not isinstance(pid, (str, int)) or pid == "":
            problems.append(f"{where}: needs 'prompt_id' (or 'id')")
            continue
        pid = str(pid)
        if isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
        if not (isinstance(prompt, list) and prompt
                and all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                        for m in prompt)):
            problems.append(f"{where}: 'prompt' must be a string or a non-empty list of {{role, content}} messages")
            continue
        if pid in seen:
            problems.append(f"{where}: duplicate id {pid!r} (first on line {seen[pid]})")
            continue
        seen[pid] = lineno
        out.append((pid, prompt))
    if problems:
        raise Problems(problems)
    if not out:
        raise UserError("no prompts", path=str(path))
    return out


def read_done(out: Path) -> set[str]:
    """Ids already in ``out``; a truncated last line is dropped (the file is rewritten without it)."""
    if not out.exists():
        return set()
    if not out.is_file():
        raise UserError("exists and is not a regular file; choose another --out", path=str(out))
    done, good_lines, problems = set(), [], []
    text = out.read_text(encoding="utf-8")
    # "\n" only: U+2028 and friends may sit unescaped inside JSON strings.
    lines = [ln + "\n" for ln in text.split("\n")[:-1]] + ([text.rsplit("\n", 1)[-1]] if not text.endswith("\n") else [])
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) and not line.endswith("\n"):
                print(f"{out}:{i}: incomplete last line (interrupted write); it will be regenerated", file=sys.stderr)
                write_atomic(out, good_lines)
                break
            problems.append(f"{out}:{i}: not JSON; refusing to append to a file that is not a responses file")
            continue
        if not (isinstance(obj, dict) and isinstance(obj.get("prompt_id"), str) and "response" in obj):
            problems.append(f"{out}:{i}: not a responses line ({{prompt_id, response}}); choose another --out")
            continue
        done.add(obj["prompt_id"])
        good_lines.append(line if line.endswith("\n") else line + "\n")
    if problems:
        raise Problems(problems[:5])
    return done


def run(args: argparse.Namespace) -> int:
    cfg = load_policy_config(config_path("policy", args.policy), parse_overrides(args.overrides) or None)
    prompts = load_prompts(args.data)
    if args.limit is not None:
        if args.limit < 0:
            raise UserError("--limit must be >= 0")
        prompts = prompts[: args.limit]
    done = read_done(args.out)
    jobs = []
    for n, (pid, messages) in enumerate(prompts):
        for i in range(cfg.samples):
            rid = pid if i == 0 else f"{pid}#{i}"
            if rid not in done:
                jobs.append((rid, pid, i, messages, args.seed + n * 1000 + i))
    print(f"generate: {len(prompts)} prompts x {cfg.samples} samples; {len(done)} already in {args.out}, "
          f"{len(jobs)} to go ({cfg.backend}:{cfg.model})", file=sys.stderr)
    if not jobs:
        return 0
    sampler = Sampler(cfg)
    written = 0

    async def main() -> None:
        nonlocal written
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="resp", desc="generating", file=sys.stderr,
                   disable=True if args.no_progress else None)
        with open(args.out, "a", encoding="utf-8") as f:
            async def one(job):
                nonlocal written
                rid, pid, i, messages, seed = job
                text, _err = await sampler.sample(messages, seed=seed)
                if text is not None:
                    f.write(json.dumps({"prompt_id": rid, "source_id": pid, "sample": i, "response": text,
                                        "model": cfg.model}, ensure_ascii=False) + "\n")
                    f.flush()
                    written += 1
                bar.update(1)

            try:
                await asyncio.gather(*(one(j) for j in jobs))
            finally:
                bar.close()
                await sampler.aclose()

    interrupted = run_interruptible(main)
    mean = sampler.latency_s / max(1, sampler.n_calls - sampler.n_failed)
    print(f"generate: wrote {written}, failed {sampler.n_failed}, calls {sampler.n_calls}, "
          f"mean latency {mean:.2f}s -> {args.out}", file=sys.stderr)
    if interrupted:
        print(f"interrupted by {interrupted}; re-run the same command to continue", file=sys.stderr)
        return 130
    return EXIT_FAILED if sampler.n_failed else 0
