"""``rubricrl generate``: sample policy responses for a prompt file, into a responses JSONL.

The prompt file is HealthBench-format JSONL (``prompt_id`` and ``prompt`` as a list of messages) or any
JSONL with an id (``prompt_id`` or ``id``) and ``prompt`` (messages or a string). Each output line is
``{"prompt_id", "response", "sample", "model"}``; with ``samples: k`` the id of sample i > 0 is
``<prompt_id>#<i>``. Resumable: a re-run skips ids already written; an interrupted run keeps every line.
An existing ``--out`` is only appended to when ``<out>.manifest.json`` proves it is this command's output
for the same prompts, policy and seed (or it is complete output of an earlier rubricrl, same model and
prompts); anything else is refused (exit 2) and left byte for byte as it was.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from rubricrl.commands.common import accept_trailing_overrides, parse_overrides, run_interruptible
from rubricrl.configs import config_path
from rubricrl.errors import Problems, UserError
from rubricrl.generation import Sampler, load_policy_config
from rubricrl.jsonl import iter_jsonl
from rubricrl.outputs import Claim, OwnedOutput, claim, digest_file, digest_json
from rubricrl.progress import progress_bar

EXIT_FAILED = 3


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "generate",
        help="sample policy responses for a prompt JSONL (resumable)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, required=True, help="prompts JSONL (HealthBench format or {id, prompt})")
    p.add_argument(
        "--policy",
        required=True,
        help="policy YAML, or a shipped name (smollm2-local, smollm2-vllm); see rubricrl.generation.PolicyConfig",
    )
    p.add_argument("--out", type=Path, required=True, help="responses JSONL to write or resume")
    p.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="override a policy key (dotted keys, YAML values), e.g. sampling.temperature=1.0; the same "
        "KEY=VALUE style as rubricrl replicate, anywhere on the line",
    )
    p.add_argument(
        "--set",
        dest="set_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="older spelling of a KEY=VALUE override (still accepted)",
    )
    p.add_argument("--seed", type=int, default=0, help="base seed; sample i of prompt n uses seed+n*1000+i")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress display (a bar on a terminal, a line every 30 s in logs)",
    )
    accept_trailing_overrides(p)
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
        if not (
            isinstance(prompt, list)
            and prompt
            and all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in prompt
            )
        ):
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


RESPONSE_KEYS = ("prompt_id", "source_id", "sample", "response", "model")


def read_done(c: Claim, model: str, prompt_ids: set[str]) -> tuple[set[str], int]:
    """Ids already in the claimed ``--out`` and the length of its complete part; changes nothing.

    Raises:
        Problems / UserError: a line that is not a responses line, or a file without a manifest that is
            not wholly complete output of ``rubricrl generate`` for this model and these prompts.
    """
    out, raw = c.path, c.raw
    done: set[str] = set()
    problems: list[str] = []
    lines = raw.split(b"\n")
    tail = lines.pop()  # after the last newline
    keep = len(raw) - len(tail)
    numbered = list(enumerate(lines, 1))
    torn = False
    if tail.strip():
        try:
            json.loads(tail.decode("utf-8"))
            numbered.append((len(lines) + 1, tail))
            keep = len(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            torn = True
    for i, line in numbered:
        if not line.strip():
            continue
        where = f"{out}:{i}"
        try:
            obj = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            problems.append(
                f"{where}: not UTF-8 text; refusing to append to a file that is not a responses file "
                "(nothing was changed); choose another --out"
            )
            continue
        except (json.JSONDecodeError, RecursionError):
            problems.append(
                f"{where}: not JSON; refusing to append to a file that is not a responses file "
                "(nothing was changed); choose another --out"
            )
            continue
        if not (
            isinstance(obj, dict)
            and isinstance(obj.get("prompt_id"), str)
            and isinstance(obj.get("response"), str)
            and all(k in obj for k in RESPONSE_KEYS)
        ):
            problems.append(
                f"{where}: not a responses line ({{{', '.join(RESPONSE_KEYS)}}}); refusing to append "
                "(nothing was changed); choose another --out"
            )
            continue
        if c.legacy and (obj["model"] != model or str(obj["source_id"]) not in prompt_ids):
            problems.append(
                f"{where}: no manifest, and this line is from another model or prompt file "
                f"(model {obj['model']!r}, source_id {obj['source_id']!r}); refusing to append "
                "(nothing was changed); choose another --out"
            )
            continue
        done.add(obj["prompt_id"])
    if problems:
        raise Problems(problems[:5] + ([f"... and {len(problems) - 5} more"] if len(problems) > 5 else []))
    if torn and c.legacy:
        raise UserError(
            f"the last line is incomplete and there is no manifest ({out.name}.manifest.json) proving "
            "the file is rubricrl generate output (nothing was changed). If it is an interrupted "
            f"responses file of an earlier rubricrl, cut it to its complete lines (`truncate -s {keep} "
            f"{out}`) and re-run; otherwise choose another --out",
            path=str(out),
        )
    if c.legacy and not done:
        raise UserError(
            "the file is not empty and holds no responses (nothing was changed); choose another --out", path=str(out)
        )
    if torn:
        print(
            f"{out}:{len(lines) + 1}: incomplete last line (interrupted write); it will be regenerated", file=sys.stderr
        )
    elif c.legacy:
        print(
            f"{out}: no manifest (written by an earlier rubricrl); its {len(done)} responses are of this model "
            "and these prompts, so it is resumed and a manifest is added",
            file=sys.stderr,
        )
    return done, keep


def policy_digest(cfg: Any, seed: int) -> str:
    """What makes two runs' responses comparable: backend, model, decoding, system prompt, seed."""
    return digest_json(
        {
            "backend": cfg.backend,
            "model": cfg.model,
            "sampling": cfg.sampling.model_dump(),
            "system_prompt": cfg.system_prompt,
            "seed": seed,
            "extra_body": cfg.extra_body,
        }
    )


def run(args: argparse.Namespace) -> int:
    items = [*args.overrides, *args.set_overrides]
    cfg = load_policy_config(
        config_path("policy", args.policy), parse_overrides(items, "override") or None, overrides_flag="override"
    )
    prompts = load_prompts(args.data)
    prompt_ids = {pid for pid, _ in prompts}
    if args.limit is not None:
        if args.limit < 0:
            raise UserError("--limit must be >= 0")
        prompts = prompts[: args.limit]
    owner = claim(
        args.out, "generate", {"data_sha256": digest_file(args.data), "policy_sha256": policy_digest(cfg, args.seed)}
    )
    done, keep = read_done(owner, cfg.model, prompt_ids)
    jobs = []
    for n, (pid, messages) in enumerate(prompts):
        for i in range(cfg.samples):
            rid = pid if i == 0 else f"{pid}#{i}"
            if rid not in done:
                jobs.append((rid, pid, i, messages, args.seed + n * 1000 + i))
    print(
        f"generate: {len(prompts)} prompts x {cfg.samples} samples; {len(done)} already in {args.out}, "
        f"{len(jobs)} to go ({cfg.backend}:{cfg.model})",
        file=sys.stderr,
    )
    if not jobs:
        return 0
    sampler = Sampler(cfg)
    written = 0

    async def main() -> None:
        nonlocal written

        bar = progress_bar(len(jobs), "generating", unit="resp", disable=args.no_progress)
        with OwnedOutput(owner, keep=keep) as f:

            async def one(job):
                nonlocal written
                rid, pid, i, messages, seed = job
                text, _err = await sampler.sample(messages, seed=seed)
                if text is not None:
                    f.append(
                        json.dumps(
                            {"prompt_id": rid, "source_id": pid, "sample": i, "response": text, "model": cfg.model},
                            ensure_ascii=False,
                        )
                        + "\n"
                    )
                    written += 1
                bar.update(1)

            try:
                await asyncio.gather(*(one(j) for j in jobs))
            finally:
                bar.close()
                await sampler.aclose()

    interrupted = run_interruptible(main)
    mean = sampler.latency_s / max(1, sampler.n_calls - sampler.n_failed)
    print(
        f"generate: wrote {written}, failed {sampler.n_failed}, calls {sampler.n_calls}, "
        f"mean latency {mean:.2f}s -> {args.out}",
        file=sys.stderr,
    )
    if interrupted:
        print(f"interrupted by {interrupted}; re-run the same command to continue", file=sys.stderr)
        return 130
    return EXIT_FAILED if sampler.n_failed else 0
