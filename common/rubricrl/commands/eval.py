"""`rubricrl eval`: lm-evaluation-harness on a paper's suite of tasks for one model (what `make eval` runs).

Examples:

    rubricrl eval --model smollm2-135m-instruct --suite PAPER --limit 5
    rubricrl eval --model runs/RUN/STAGE/final --suite PAPER --base-url http://127.0.0.1:8000/v1
    rubricrl eval --model smollm2-135m-instruct --suite PAPER --tasks healthbench_500 --serve-judge

PAPER is a replication (a folder replications/PAPER/); each has one suite.

Results go to lm-eval's layout under runs/eval/<model>/<suite>/; `rubricrl report` compares them with the
paper's table. An interrupted run resumes from lm-eval's response cache when re-run with the same arguments.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from rubricrl.papers import help_list
from rubricrl.report.eval_runner import add_arguments
from rubricrl.report.eval_runner import run as run_eval


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a model on a paper's lm-eval suite (make eval)",
        description=f"{__doc__}\nSuites: {help_list()}.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return add_arguments(p)


def run(args: argparse.Namespace) -> int:

    if logging.getLogger("rubricrl").level > logging.INFO or logging.getLogger("rubricrl").level == 0:
        logging.getLogger("rubricrl.eval").setLevel(logging.INFO)
    run_eval(args)
    return 0
