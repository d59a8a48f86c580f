"""HealthBench meta-eval hooks: the model under test grades; logic in rubricrl.evaluation.meta_eval."""

from rubricrl.evaluation import meta_eval as me

load_dataset = me.load_dataset
process_results = me.process_results
agg_macro_f1 = me.agg_macro_f1
agg_balanced_accuracy = me.agg_balanced_accuracy
agg_f1_pos = me.agg_f1_pos
agg_f1_neg = me.agg_f1_neg
agg_physician_macro_f1 = me.agg_physician_macro_f1


def doc_to_text(doc: dict) -> str:
    """The grader prompt: rubricrl's HealthBench judge template for this (completion, rubric item)."""
    return me.grader_prompt(doc)
