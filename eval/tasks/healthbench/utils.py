"""HealthBench task hooks: all logic lives in rubricrl.evaluation.healthbench (see its docstring)."""

from rubricrl.evaluation import healthbench as hb
from rubricrl.evaluation.chat_task import ChatTask, transcript

load_dataset = hb.load_dataset
process_results = hb.process_results
agg_bootstrap_std = hb.agg_bootstrap_std
agg_sum = hb.agg_sum
agg_count = hb.agg_count


def doc_to_text(doc: dict) -> str:
    """The conversation as text (for logs; ChatTask sends the turns as chat messages)."""
    return transcript(doc["messages"])


# One aggregation per metric: score_records(...).metrics[<name>] over the graded records.
agg_overall_score = hb.aggregation("overall_score")
agg_axis_accuracy = hb.aggregation("axis_accuracy")
agg_axis_completeness = hb.aggregation("axis_completeness")
agg_axis_communication_quality = hb.aggregation("axis_communication_quality")
agg_axis_context_awareness = hb.aggregation("axis_context_awareness")
agg_axis_instruction_following = hb.aggregation("axis_instruction_following")
agg_theme_emergency_referrals = hb.aggregation("theme_emergency_referrals")
agg_theme_context_seeking = hb.aggregation("theme_context_seeking")
agg_theme_global_health = hb.aggregation("theme_global_health")
agg_theme_health_data_tasks = hb.aggregation("theme_health_data_tasks")
agg_theme_communication = hb.aggregation("theme_communication")
agg_theme_hedging = hb.aggregation("theme_hedging")
agg_theme_complex_responses = hb.aggregation("theme_complex_responses")

__all__ = ["ChatTask", "doc_to_text", "load_dataset", "process_results"]
