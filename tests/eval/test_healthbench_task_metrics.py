"""HealthBench task metrics: the harness aggregations are score_records over the graded records."""

from __future__ import annotations

import json
import math

import pytest

from rubricrl.evaluation import healthbench as hb
from rubricrl.scoring.graded import GradedRecord
from rubricrl.scoring.healthbench import score_records


def _record(pid, items, met, theme):
    """A graded record: items are (points, axis) pairs, met the judge's decisions (None = ungraded)."""
    return {
        "prompt_id": pid,
        "prompt": [{"role": "user", "content": f"question {pid}"}],
        "rubrics": [
            {"criterion": f"item {i}", "points": p, "tags": [f"axis:{a}", "level:example"]}
            for i, (p, a) in enumerate(items)
        ],
        "example_tags": [f"theme:{theme}"],
        "response": f"answer {pid}",
        "grades": [{"criteria_met": m, "explanation": ""} for m in met],
    }


GRADED = [
    # REFERENCE.md's worked check: met points 7 + 10 - 6 over positive points 22 = 0.5
    _record(
        "a",
        [(7, "accuracy"), (10, "completeness"), (5, "accuracy"), (-6, "accuracy")],
        [True, True, False, True],
        "hedging",
    ),
    # negative score (clipped only at corpus level): -4 / 3
    _record("b", [(3, "completeness"), (-4, "communication_quality")], [False, True], "hedging"),
    # one ungraded item (excluded): 2 / 2 = 1
    _record("c", [(2, "accuracy"), (4, "completeness")], [True, None], "global_health"),
]
RECORDS = [hb.example_score(r) for r in GRADED]  # what process_results hands every score metric


def test_worked_example_and_hand_computed_means():
    overall = hb.aggregation("overall_score")(RECORDS)
    assert overall == pytest.approx(max(0.0, min(1.0, (0.5 - 4 / 3 + 1.0) / 3)))
    # axis:accuracy: a -> (7 - 6) / 12, c -> 2 / 2; b has no accuracy item
    assert hb.aggregation("axis_accuracy")(RECORDS) == pytest.approx((1 / 12 + 1.0) / 2)
    # theme:hedging: examples a and b -> clip(mean(0.5, -4/3)) = 0
    assert hb.aggregation("theme_hedging")(RECORDS) == 0.0
    assert hb.aggregation("theme_global_health")(RECORDS) == pytest.approx(1.0)
    assert math.isnan(hb.aggregation("theme_emergency_referrals")(RECORDS))  # no such example


def test_every_metric_equals_score_records():
    ref = score_records([GradedRecord(json.loads(json.dumps(r))) for r in GRADED])
    for lm_name, ref_name in hb.METRICS.items():
        got = hb.aggregation(lm_name)(RECORDS)
        want = ref.metrics.get(ref_name, math.nan)
        assert (math.isnan(got) and math.isnan(want)) or got == want, lm_name
    assert hb.agg_bootstrap_std(RECORDS) == ref.metrics["overall_score:bootstrap_std"]


def test_no_scorable_example_gives_nan_not_an_exception():
    rec = _record("z", [(5, "accuracy")], [None], "hedging")
    assert math.isnan(hb.aggregation("overall_score")([hb.example_score(rec)]))


def test_records_from_samples_round_trip(tmp_path):
    samples = tmp_path / "samples_healthbench_500.jsonl"
    samples.write_text(
        "".join(json.dumps({"doc_id": i, "graded_examples": r, "n_ungraded": 0}) + "\n" for i, r in enumerate(GRADED))
    )
    got = hb.records_from_samples(samples)
    assert [r.prompt_id for r in got] == ["a", "b", "c"]
    assert score_records(got).metrics == score_records([GradedRecord(r) for r in GRADED]).metrics


def test_docs_keep_conversation_and_record(repo_root):
    from rubricrl.data.healthbench import load_subset

    ex = load_subset("offline")[:3]
    docs = hb.docs(ex, "/x/judge.yaml")
    assert [d["prompt_id"] for d in docs] == [e.prompt_id for e in ex]
    assert docs[0]["messages"] == ex[0].prompt
    assert json.loads(docs[0]["record"]) == ex[0].raw and docs[0]["judge"] == "/x/judge.yaml"


def test_dataset_hooks_offline_and_data_file(tmp_path, monkeypatch):
    """The custom_dataset hooks: offline copy, a prepared data file, the judge recorded per document."""
    from rubricrl.evaluation import writing

    judge = tmp_path / "judge.yaml"
    judge.write_text("backend: programmatic\n")  # builds without a server
    ds = hb.load_dataset(subset="offline", judge=str(judge), version=1.0)["test"]
    assert len(ds) == 500 and ds[0]["judge"] == str(judge.resolve())
    small = tmp_path / "hb.jsonl"
    small.write_text("".join(json.dumps(ex) + "\n" for ex in (json.loads(d["record"]) for d in ds.select(range(2)))))
    ds2 = hb.load_dataset(subset="hard", judge=str(judge), healthbench_data_file=str(small))["test"]
    assert ds2["prompt_id"] == ds["prompt_id"][:2]
    wb = writing.writingbench_dataset(lang="zh", judge=str(judge))["test"]
    assert len(wb) == 445 and set(wb["lang"]) == {"zh"}
    with pytest.raises(Exception, match="unknown HealthBench subset"):
        hb.load_dataset(subset="medium", judge=str(judge))
