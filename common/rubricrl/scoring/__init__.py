"""Benchmark scoring over graded files (HealthBench metrics, the graded interchange format)."""

from rubricrl.scoring.graded import GradedFile, GradedRecord, GradedWriter, make_record, read_graded, rewrite_graded
from rubricrl.scoring.healthbench import (
    OVERALL,
    UNGRADED_POLICIES,
    ExampleScore,
    HealthBenchReport,
    aggregate_examples,
    clipped_stats,
    points_score,
    score_example,
    score_records,
)

__all__ = [
    "OVERALL",
    "UNGRADED_POLICIES",
    "ExampleScore",
    "GradedFile",
    "GradedRecord",
    "GradedWriter",
    "HealthBenchReport",
    "aggregate_examples",
    "clipped_stats",
    "make_record",
    "points_score",
    "read_graded",
    "rewrite_graded",
    "score_example",
    "score_records",
]
