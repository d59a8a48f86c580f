"""HealthBench meta-eval metrics against hand-computed cases, and the record format checks."""

from __future__ import annotations

import json
import math

import pytest

from rubricrl.errors import Problems
from rubricrl.evaluation import meta_eval as me


def test_pairwise_metrics_hand_computed():
    # Rows: grader True vs physicians [T, T, F]; grader False vs [F, T]; grader True vs [F].
    pairs = [(True, [True, True, False]), (False, [False, True]), (True, [False])]
    m = me.pairwise_metrics(pairs)
    # precision_pos: grader-True pairs: T=T, T=T, T!=F, T!=F -> 2/4; precision_neg: F=F, F!=T -> 1/2
    assert m["precision_pos"] == pytest.approx(0.5)
    assert m["precision_neg"] == pytest.approx(0.5)
    # recall_pos: physician-True pairs: (T,T) (T,T) (F,T) -> 2/3; recall_neg: (T,F) (F,F) (T,F) -> 1/3
    assert m["recall_pos"] == pytest.approx(2 / 3)
    assert m["recall_neg"] == pytest.approx(1 / 3)
    f1_pos = 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3)
    f1_neg = 2 * 0.5 * (1 / 3) / (0.5 + 1 / 3)
    assert m["f1_pos"] == pytest.approx(f1_pos)
    assert m["macro_f1"] == pytest.approx((f1_pos + f1_neg) / 2)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert m["n_pairs"] == 6


def test_pairwise_metrics_perfect_and_undefined():
    perfect = me.pairwise_metrics([(True, [True, True]), (False, [False])])
    assert perfect["macro_f1"] == 1.0 and perfect["balanced_accuracy"] == 1.0
    one_class = me.pairwise_metrics([(True, [True])])  # no negatives anywhere: neg metrics undefined
    assert one_class["precision_neg"] is None and one_class["macro_f1"] is None


def test_physician_baseline_leave_one_out():
    rows = [
        {"binary_labels": [True, True, False], "anonymized_physician_ids": ["a", "b", "c"]},
        {"binary_labels": [False, False], "anonymized_physician_ids": ["a", "c"]},
    ]
    # a: (T vs [T,F]), (F vs [F]) -> prec_pos 1/2, prec_neg 1, rec_pos 1, rec_neg 1/2 -> f1 2/3, 2/3
    # b: (T vs [T,F]) -> neg precision undefined -> skipped
    # c: (F vs [T,T]), (F vs [F]) -> prec_pos None -> skipped
    out = me.physician_metrics(rows)
    assert out["macro_f1"] == pytest.approx(2 / 3)


def test_aggregations_skip_unparsed_and_count_them():
    items = [
        {"label": True, "labels": [True], "physicians": ["a"], "category": "x"},
        {"label": None, "labels": [False], "physicians": ["a"], "category": "x"},
        {"label": False, "labels": [False], "physicians": ["a"], "category": "x"},
    ]
    assert me.agg_macro_f1(items) == 1.0
    assert math.isnan(me.agg_physician_macro_f1(items))  # one physician per row: no pairs
    doc = {
        "prompt": [{"role": "user", "content": "hi"}],
        "completion": "hello",
        "rubric": "Greets the user.",
        "binary_labels": [True, False],
        "anonymized_physician_ids": ["a", "b"],
        "category": "cluster:x",
        "prompt_id": "p",
        "completion_id": "c",
    }
    assert me.process_results(doc, ["no json here"])["ungraded_rate"] == 1.0
    ok = me.process_results(doc, ['{"explanation": "greets", "criteria_met": true}'])
    assert ok["ungraded_rate"] == 0.0 and ok["macro_f1"]["label"] is True


def test_grader_prompt_uses_training_template_and_points():
    doc = {
        "prompt": [{"role": "user", "content": "I have a headache"}],
        "completion": "Drink water.",
        "rubric": "[-5] Recommends an unsafe dose.",
        "prompt_id": "p",
        "completion_id": "c",
    }
    text = me.grader_prompt(doc)
    assert "[-5] Recommends an unsafe dose." in text and "Drink water." in text
    assert text == me.grader_prompt(dict(doc))  # deterministic (request caching)
    assert me.criterion_of("Plain item").points == 1.0


def test_load_records_names_bad_lines(tmp_path):
    good = {
        "prompt": [{"role": "user", "content": "q"}],
        "completion": "a",
        "rubric": "r",
        "binary_labels": [True],
        "anonymized_physician_ids": ["x"],
        "category": "c",
    }
    bad = dict(good, binary_labels="yes")
    p = tmp_path / "meta.jsonl"
    p.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n{oops\n")
    with pytest.raises(Problems) as e:
        me.load_records(p)
    text = str(e.value)
    assert f"{p}:2: binary_labels" in text and f"{p}:3:" in text
