"""Check a finished self-rewarding run against ``expected.yaml`` (executable metric expectations).

Usage: ``python replications/self_rewarding/check_expected.py runs/<run> [--scale tiny]``

Each expectation is a Python expression over ``data``: ``data[<stage>]`` is that stage's
``metrics.json`` (``data``, ``train``, ``eval``, ``report``); ``health["train"]`` (the training stage's
reward health, ``rubricrl.report.judge_health.stage_health``: read also from a stage that stopped on it,
or from the log history of an older run); and ``cfg`` (the run's ``config.yaml``). The scale defaults to
the one in the run's ``config.yaml``. Exit 0 when all hold, 1 when any fails (each is printed with its value),
2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from rubricrl.report.judge_health import stage_health

HERE = Path(__file__).resolve().parent
SAFE = {"abs": abs, "min": min, "max": max, "len": len, "round": round}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--scale", help="expectation set (default: run.scale of the run's config.yaml)")
    ap.add_argument("--expected", type=Path, default=HERE / "expected.yaml")
    args = ap.parse_args(argv)
    cfg_file = args.run_dir / "config.yaml"
    if not cfg_file.is_file():
        print(f"{cfg_file}: not found; is {args.run_dir} a run folder?", file=sys.stderr)
        return 2
    cfg = yaml.safe_load(cfg_file.read_text())
    scale = args.scale or cfg["run"]["scale"]
    sets = yaml.safe_load(args.expected.read_text())
    if scale not in sets:
        print(f"{args.expected}: no expectations for scale {scale!r} (has {', '.join(sets)})", file=sys.stderr)
        return 2
    data = {}
    for stage in ("data", "train", "eval", "report"):
        f = args.run_dir / stage / "metrics.json"
        data[stage] = json.loads(f.read_text()) if f.is_file() else {}
    env = {"data": data, "health": {"train": stage_health(args.run_dir / "train")}, "cfg": cfg}
    failed = 0
    for expr in sets[scale]:
        try:
            ok = bool(eval(expr, {"__builtins__": SAFE}, env))  # noqa: S307 (our own file)
            why = ""
        except Exception as e:  # noqa: BLE001
            ok, why = False, f" ({type(e).__name__}: {e})"
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {expr}{why}")
    print(f"{len(sets[scale]) - failed}/{len(sets[scale])} expectations hold ({scale})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
