"""``rubricrl report``: evaluation results against the papers' tables (markdown, PNG charts, W&B table)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from rubricrl.errors import UserError
from rubricrl.papers import help_list, paper_names
from rubricrl.report.charts import write_charts
from rubricrl.report.compare import DEFAULT_MIN_N, SCALES, compare, render_markdown, to_json
from rubricrl.report.paper_tables import load_paper_tables
from rubricrl.report.results import merge_runs, read_results
from rubricrl.report.wandb_log import MODES, default_mode, log_report


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report",
        help="compare evaluation results with a paper's tables (markdown, charts, W&B)",
        description="Set one or more evaluation results against the published numbers of a paper: a markdown "
        "table with deltas, the judge and the scale of each run, PNG charts, and the same table in W&B "
        "(offline by default). Runs that are not at paper scale, were limited, or used another grader are "
        "labelled not comparable.",
        epilog="RESULTS: lm-eval results_*.json files or their folders (the newest result of each task), "
        "or TASK=PATH for "
        "`rubricrl score --json` output (e.g. healthbench_hard=score.json). Example: rubricrl report "
        "runs/eval/smollm2-135m-instruct/<paper> --paper <paper> --out runs/report/<paper>",
    )
    p.add_argument("results", nargs="+", metavar="RESULTS", help="results files, folders, or TASK=PATH")
    p.add_argument(
        "--paper", required=True, metavar="PAPER", help=f"which paper's tables to compare with: {help_list()}"
    )
    p.add_argument("--out", type=Path, default=None, help="report folder (default runs/report/<paper>)")
    p.add_argument(
        "--scale",
        default=None,
        metavar="|".join(SCALES),
        help="scale of every run (default: from make eval's record, else guessed from the model name; "
        "only 'paper' makes numbers comparable)",
    )
    p.add_argument(
        "--min-n",
        type=int,
        default=DEFAULT_MIN_N,
        metavar="N",
        help=f"leave out deltas whose value rests on fewer than N examples (default {DEFAULT_MIN_N}; "
        "0 shows every delta)",
    )
    p.add_argument(
        "--wandb",
        default=None,
        metavar="|".join(MODES),
        help="W&B logging (default $WANDB_MODE, else offline; never needs a login unless online)",
    )
    p.add_argument("--wandb-project", default=None, help="W&B project (default $WANDB_PROJECT or rubricrl)")
    p.add_argument("--tables", type=Path, default=None, help="paper tables folder (default eval/paper_tables)")
    p.add_argument("--quiet", action="store_true", help="do not print the markdown report")
    return p


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> int:
    if args.paper not in paper_names():
        raise UserError(f"unknown paper {args.paper!r}; choose one of: {', '.join(paper_names())}")
    if args.scale is not None and args.scale not in SCALES:
        raise UserError(f"unknown --scale {args.scale!r}; choose one of: {', '.join(SCALES)}")
    mode = args.wandb or default_mode()
    if mode not in MODES:
        raise UserError(f"unknown --wandb mode {mode!r}; choose one of: {', '.join(MODES)}")
    tables = load_paper_tables(args.paper, args.tables)
    runs = merge_runs([run for spec in args.results for run in read_results(spec)])
    if args.min_n < 0:
        raise UserError(f"--min-n must be 0 or more, not {args.min_n}")
    comp = compare(args.paper, tables, runs, scale=args.scale, min_n=args.min_n)

    out: Path = args.out or Path("runs") / "report" / args.paper
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the report folder: {e.strerror}", path=str(out)) from None
    charts = write_charts(comp.tables, out / "charts")
    rel = {tid: [str(p.relative_to(out)) for p in paths] for tid, paths in charts.items()}
    markdown = render_markdown(comp, rel)
    _write_text(out / "report.md", markdown)
    _write_text(out / "comparison.json", json.dumps(to_json(comp), indent=2, ensure_ascii=False) + "\n")
    wandb_dir = log_report(comp, charts, out, mode, project=args.wandb_project)
    if not args.quiet:
        print(markdown)
    print(f"report: {out / 'report.md'} (charts: {out / 'charts'}; data: {out / 'comparison.json'})")
    if wandb_dir is not None:
        hint = f"; upload with `wandb sync {wandb_dir}`" if mode == "offline" else ""
        print(f"W&B {mode} run: {wandb_dir}{hint}")
    for b in comp.banners:
        print(f"NOTE: {b}")
    return 0
