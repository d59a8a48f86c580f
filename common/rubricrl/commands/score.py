"""``rubricrl score``: benchmark metrics from a graded file (HealthBench: the reference metric names)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rubricrl.errors import UserError
from rubricrl.scoring.graded import read_graded
from rubricrl.scoring.healthbench import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_SEED,
    OVERALL,
    UNGRADED_POLICIES,
    HealthBenchReport,
    score_records,
)

# Table order after overall_score: by tag family, then alphabetically.
FAMILY_ORDER = ("axis", "theme", "physician_agreed_category", "level", "cluster")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "score",
        help="metrics from a graded file (rubricrl grade output)",
        description="Score a graded JSONL file. HealthBench: per-example points ratio, per-tag scores, "
        "mean clipped to [0, 1], n_samples and bootstrap std (names as in simple-evals).",
    )
    p.add_argument("graded", type=Path, help="graded JSONL (from `rubricrl grade`)")
    p.add_argument("--format", choices=["healthbench"], default="healthbench", help="benchmark scoring rules")
    p.add_argument("--json", action="store_true", help="print one JSON object with the reference metric names")
    p.add_argument(
        "--ungraded",
        choices=UNGRADED_POLICIES,
        default="exclude",
        help="ungraded verdicts: exclude (drop the item; default), not_met (count as not met), "
        "fail (refuse to score, exit 3)",
    )
    p.add_argument(
        "--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, metavar="N", help="bootstrap resamples (0 = none)"
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap seed")
    return p


def _family(name: str) -> tuple[int, str]:
    prefix = name.split(":", 1)[0]
    rank = FAMILY_ORDER.index(prefix) if prefix in FAMILY_ORDER else len(FAMILY_ORDER)
    return rank, name


def render_table(report: HealthBenchReport) -> str:
    """A plain-text table: overall first, then axis, theme, category, level, cluster, others."""
    m = report.metrics
    names = [k for k in m if ":n_samples" not in k and ":bootstrap_std" not in k]
    names.sort(key=lambda n: (n != OVERALL, _family(n)))
    width = max(len(n) for n in names)
    lines = [f"{'metric':<{width}}  {'score':>7}  {'± std':>7}  {'n':>6}"]
    for n in names:
        lines.append(f"{n:<{width}}  {m[n]:>7.4f}  {m[f'{n}:bootstrap_std']:>7.4f}  {m[f'{n}:n_samples']:>6}")
    lines.append("")
    lines.append(
        f"examples: {report.n_examples} (scored {report.n_scored}, unscorable {report.n_unscorable}); "
        f"ungraded verdicts: {report.n_ungraded} (policy: {report.ungraded_policy}); "
        f"bootstrap: {report.n_bootstrap} resamples, seed {report.seed}"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    graded = read_graded(args.graded)
    if graded.truncated_tail:
        print(
            f"warning: {args.graded}: last line is incomplete and ignored (re-run `rubricrl grade` to finish it)",
            file=sys.stderr,
        )
    if not graded.records:
        raise UserError("no graded examples", path=str(args.graded))
    if args.bootstrap < 0:
        raise UserError("--bootstrap must be >= 0")
    report = score_records(graded.records, ungraded=args.ungraded, n_bootstrap=args.bootstrap, seed=args.seed)
    if args.json:
        print(json.dumps(report.to_json(), indent=None))
    else:
        print(render_table(report))
    return 0
