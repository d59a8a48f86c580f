"""WritingBench hooks: tiered judge scores 1-10 per checklist item; logic in rubricrl.evaluation.writing."""

from rubricrl.evaluation import writing

load_dataset = writing.writingbench_dataset
process_results = writing.writingbench_process_results
agg_score = writing.writingbench_agg
agg_score_en = writing.writingbench_agg_en
agg_score_zh = writing.writingbench_agg_zh


def agg_sum(items: list) -> float:
    return float(sum(items))
