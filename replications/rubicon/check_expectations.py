"""Check a Rubicon run against expected.yaml (NeMo RL's check_metrics.py pattern, expressions in YAML).

Usage: python replications/rubicon/check_expectations.py [RUN_DIR] [--expected FILE]

Each expectation is a Python expression over:
``m[stage]`` (the stage's metrics.json), ``eval`` (eval/eval.json), ``cfg`` (the run's resolved
config.yaml), ``done`` (stage -> finished), ``health[stage]`` (a training stage's reward health:
``rubricrl.report.judge_health.stage_health``, read also from a stage that stopped on it, or from the
log history of an older run). ``level: fail`` (default) makes the exit code 1 when the
expression is false; ``level: warn`` only reports. Prints one line per expectation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from rubricrl.report.judge_health import stage_health

HERE = Path(__file__).resolve().parent


def load(run_dir: Path) -> dict:
    stages = (
        [p.name for p in run_dir.iterdir() if p.is_dir() and (p / "config.yaml").is_file()] if run_dir.is_dir() else []
    )
    m = {
        s: json.loads((run_dir / s / "metrics.json").read_text())
        for s in stages
        if (run_dir / s / "metrics.json").is_file()
    }
    ev = run_dir / "eval" / "eval.json"
    cfg = run_dir / "config.yaml"
    return {
        "m": m,
        "eval": json.loads(ev.read_text()) if ev.is_file() else {},
        "cfg": yaml.safe_load(cfg.read_text()) if cfg.is_file() else {},
        "done": {s: (run_dir / s / "DONE").is_file() for s in stages},
        "health": {s: stage_health(run_dir / s) for s in ("stage1_rl", "stage2_rl")},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", nargs="?", default="runs/rubicon-tiny")
    ap.add_argument("--expected", default=str(HERE / "expected.yaml"))
    a = ap.parse_args(argv)
    run_dir = Path(a.run_dir)
    if not (run_dir / "config.yaml").is_file():
        print(f"{run_dir}: not a run folder (no config.yaml); run `make replicate-rubicon` first", file=sys.stderr)
        return 2
    spec = yaml.safe_load(Path(a.expected).read_text())
    env = load(run_dir)
    failed = 0
    for e in spec["expectations"]:
        level = e.get("level", "fail")
        try:
            scope = {"__builtins__": {"all": all, "any": any, "abs": abs, "len": len, "max": max, "min": min}, **env}
            ok = bool(eval(e["expr"], scope))  # noqa: S307 - expressions come from the repo's expected.yaml
            why = ""
        except Exception as ex:  # noqa: BLE001 - a missing metric is a failed expectation
            ok, why = False, f" ({type(ex).__name__}: {ex})"
        tag = "ok  " if ok else ("FAIL" if level == "fail" else "warn")
        failed += not ok and level == "fail"
        print(f"{tag} {e['name']}: {e['expr']}{why}")
    print(f"{len(spec['expectations'])} expectations, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
