"""Creative-writing rubric task hooks (EQ-Bench Creative Writing v3 style); logic in rubricrl.evaluation.writing."""

from pathlib import Path

import datasets

from rubricrl.evaluation import judging, writing

HERE = Path(__file__).parent
process_results = writing.cw_process_results
agg_rubric_score = writing.cw_agg


def load_dataset(prompts_file: str | None = None, criteria_file: str | None = None, **metadata) -> dict:
    """Our prompts (prompts.jsonl) and criteria (criteria.yaml, a rubric bank) unless files are given."""
    rows = writing.cw_docs(
        prompts_file or HERE / "prompts.jsonl",
        criteria_file or HERE / "criteria.yaml",
        judging.prepare(metadata, tiered=True),
    )
    return {"test": datasets.Dataset.from_list(rows)}


def agg_sum(items: list) -> float:
    return float(sum(items))
