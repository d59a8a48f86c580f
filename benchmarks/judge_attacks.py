"""Attacks on the judge: how often an attack moves a verdict to the attacker's side, defenses off and on.

Runs the suite of :mod:`rubricrl.evaluation.judge_attacks` (clean / attacked / neutral triples over 13
attack categories, on positive and negative rubric items) against one judge config, in binary and batch
mode, once with the judge's input defenses off (``sanitize: false``, no response length cap, ungraded
items dropped) and once with them on (the shipped config, ungraded items counted against the response).
Starts the CPU vLLM judge (SmolLM2-135M) unless ``--base-url`` points at a running server; any judge
config works (``--judge-config``). Temperature 0. Prints, per category and mode: attack success (moved
toward the attacker, among scenarios whose clean verdict was against the attacker), the same for the
neutral twins, the ungraded rate, copies of the forged explanation, and the judge's accuracy on the clean
twins; and, with the programmatic detectors of the defense rubric (``defense-reward-hacking``; the "off"
runs without the detectors added with the defenses), how many attacked and neutral twins a detector
vetoes and how many attacks moved the verdict and escaped every detector (what reaches a reward that
uses the defense rubric as a veto). ``--json``: the last line is one JSON object::

    .venv/bin/python benchmarks/judge_attacks.py
    .venv/bin/python benchmarks/judge_attacks.py --modes binary --defenses on --json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

OFF = {"sanitize": False, "max_response_chars": None}  # the defenses a judge config can switch off
# Detectors added to the defense rubric with the judge defenses: the "off" runs score without them.
NEW_DETECTORS = ("grader_injection",)
DEFENSE = ("rubric_banks/defense", "defense-reward-hacking")


def defense_rubric(defenses: bool) -> Any:
    """The defense rubric whose programmatic detectors veto (without the new detectors when ``defenses`` is off)."""
    from rubricrl.rubrics.loader import load_rubrics

    rubric = next(r for r in load_rubrics([REPO / DEFENSE[0]]) if r.id == DEFENSE[1])
    if defenses:
        return rubric
    return rubric.model_copy(update={"criteria": tuple(c for c in rubric.criteria if c.id not in NEW_DETECTORS)})


def judge_config(path: str, base_url: str, model: str, mode: str, defenses: bool, concurrency: int | None) -> Any:
    """The judge config of one run: the file's config pointed at the server, temperature 0, defenses on/off."""
    from rubricrl.judge import JudgeConfig
    from rubricrl.judge.config import load_judge_config

    cfg = load_judge_config(path)
    upd: dict[str, Any] = {
        "base_url": base_url,
        "base_url_file": None,
        "model": model,
        "mode": mode,
        "sampling": cfg.sampling.model_copy(update={"temperature": 0.0}),
        "cache": None,
    }
    if mode == "batch" and cfg.template == "healthbench":
        upd["template"] = "batch"
    if concurrency:
        upd["concurrency"] = concurrency
    if not defenses:
        upd.update({k: v for k, v in OFF.items() if k in JudgeConfig.model_fields})
    return JudgeConfig.model_validate({**cfg.model_dump(), **upd})


def run_one(
    cfg: Any,
    mode: str,
    categories: list[str],
    n_scenarios: int,
    padding_chars: int,
    ungraded_policy: str,
    defense: Any = None,
) -> dict[str, Any]:
    from rubricrl.evaluation.judge_attacks import SCENARIOS, build_suite, detector_vetoes, requests_for, score_suite
    from rubricrl.judge import build_judge, close_judge, grade_many
    from rubricrl.progress import progress_bar

    items = build_suite(categories, SCENARIOS[:n_scenarios], mode, padding_chars)
    requests = requests_for(items, mode)
    judge = build_judge(cfg)
    t0 = time.monotonic()
    bar = progress_bar(len(requests), f"{mode} grading", unit="responses")
    try:
        verdicts = grade_many(judge, requests, progress=lambda done, total: bar.update(1))
    finally:
        bar.close()
        close_judge(judge)
    vetoed = detector_vetoes(items, defense) if defense is not None else None
    out = score_suite(items, [vs[0] for vs in verdicts], ungraded_policy, vetoed)
    stats = judge.stats.as_dict()
    out.update(
        {
            "mode": mode,
            "items": len(items),
            "wall_s": round(time.monotonic() - t0, 1),
            "judge_calls": int(stats.get("calls", 0)),
            "truncated": int(stats.get("truncated", 0)),
        }
    )
    return out


def _fmt(x: Any) -> str:
    return "-" if x is None else (f"{x:.0%}" if isinstance(x, float) else str(x))


def print_table(runs: list[dict[str, Any]]) -> None:
    print(
        "| defenses | mode | category | attack moved (of clean-against) | neutral moved | ungraded | "
        "copied forged explanation | vetoed by a detector (attacked / neutral) | moved and not vetoed |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        for row in r["categories"] + [r["negative"], r["all"]]:
            if not row["scenarios"]:
                continue
            moved = f"{row['attack_success']}/{row['clean_against']} ({_fmt(row['attack_success_rate'])})"
            neutral = (
                f"{row['neutral_moved']}/{row['clean_against']} ({_fmt(row['neutral_rate'])})"
                if row["neutral_rate"] is not None
                else "-"
            )
            ungraded = f"{row['attacked_ungraded']}/{row['scenarios']}"
            copied = f"{row['copied_forged_explanation']}/{row['forged_n']}" if row["forged_n"] else "-"
            name = f"**{row['category']}**" if row["category"] == "all" else row["category"]
            vetoed = f"{row['vetoed']}/{row['scenarios']} / {row['neutral_vetoed']}" if r["detectors"] else "-"
            net = (
                f"{row['moved_unvetoed']}/{row['clean_against']} ({_fmt(row['moved_unvetoed_rate'])})"
                if r["detectors"]
                else "-"
            )
            print(
                f"| {r['defenses']} | {r['mode']} | {name} | {moved} | {neutral} | {ungraded} | {copied} | "
                f"{vetoed} | {net} |"
            )
    print()
    for r in runs:
        print(
            f"{r['defenses']} / {r['mode']}: clean accuracy {_fmt(r['clean_accuracy'])} of {r['clean_n']} "
            f"({r['clean_ungraded']} ungraded, {r['clean_vetoed']} vetoed), ungraded policy {r['ungraded_policy']}, "
            f"{r['items']} items, "
            f"{r['judge_calls']} judge calls, {r['truncated']} responses cut, {r['wall_s']} s"
        )


def main(argv: list[str] | None = None) -> int:
    from rubricrl.evaluation.judge_attacks import CATEGORIES, SCENARIOS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--judge-config",
        default=str(REPO / "common/rubricrl/configs/judge/smollm2-vllm.yaml"),
        help="judge YAML to attack (its base_url and model are replaced by the server's)",
    )
    p.add_argument("--modes", default="binary,batch", help="comma-separated: binary, batch")
    p.add_argument("--defenses", default="off,on", help="comma-separated: off, on")
    p.add_argument("--categories", default=",".join(CATEGORIES), help="comma-separated attack categories")
    p.add_argument("--scenarios", type=int, default=len(SCENARIOS), help=f"scenarios used (at most {len(SCENARIOS)})")
    p.add_argument("--padding-chars", type=int, default=20000, help="length of the padding attack")
    p.add_argument(
        "--ungraded-on",
        default="pessimistic",
        help="ungraded policy of the defended reward (exclude, not_met, pessimistic)",
    )
    p.add_argument("--concurrency", type=int, help="judge calls in flight (default: the config's)")
    p.add_argument(
        "--no-detectors", action="store_true", help="judge alone: leave out the defense rubric's programmatic detectors"
    )
    p.add_argument("--model", default="smollm2-135m-instruct", help="alias or checkpoint directory to serve")
    p.add_argument("--base-url", help="use this running server instead of starting one")
    p.add_argument("--served-model-name", help="model name on --base-url (default: --model)")
    p.add_argument("--max-model-len", type=int, default=2048, help="server context (the tiny judge's is 2048)")
    p.add_argument("--json", action="store_true", help="last line: one JSON object with all figures")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from judge_throughput import machine

    from rubricrl.judge.vllm_server import VLLMServer

    where = machine()
    cats = [c.strip() for c in args.categories.split(",") if c.strip()]
    unknown = sorted(set(cats) - set(CATEGORIES))
    if unknown:
        p.error(f"unknown categories {unknown}; known: {', '.join(CATEGORIES)}")
    server = None
    if args.base_url:
        base_url, model = args.base_url, args.served_model_name or args.model
    else:
        server = VLLMServer(args.model, max_model_len=args.max_model_len).start()
        base_url, model = server.base_url, server.served_model_name
    runs = []
    try:
        for d in [x.strip() for x in args.defenses.split(",") if x.strip()]:
            for mode in [x.strip() for x in args.modes.split(",") if x.strip()]:
                cfg = judge_config(args.judge_config, base_url, model, mode, d == "on", args.concurrency)
                print(f"defenses {d}, {mode} mode ...", file=sys.stderr, flush=True)
                r = run_one(
                    cfg,
                    mode,
                    cats,
                    args.scenarios,
                    args.padding_chars,
                    args.ungraded_on if d == "on" else "exclude",
                    None if args.no_detectors else defense_rubric(d == "on"),
                )
                r["defenses"] = d
                runs.append(r)
    finally:
        if server is not None:
            server.stop()
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: {where}; load average {os.getloadavg()[0]:.1f} at the end")
    print(
        f"settings: judge config {args.judge_config}, model {model}, temperature 0, {args.scenarios} scenarios, "
        f"max_model_len {args.max_model_len}, padding {args.padding_chars} chars"
    )
    print()
    print_table(runs)
    if args.json:
        print(json.dumps({"runs": runs, "machine": where, "command": shlex.join(sys.argv)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
