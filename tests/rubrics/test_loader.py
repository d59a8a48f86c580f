"""Loading rubric banks (YAML) and rubric JSONL files: shapes, defaults, provenance, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rubricrl.errors import Problems
from rubricrl.rubrics.loader import load_paths, load_rubrics

FIX = Path(__file__).parent / "fixtures"
GOOD = FIX / "good"


def _by_id(rubrics):
    return {r.id: r for r in rubrics}


def test_bank_defaults_apply_unless_the_rubric_sets_the_field():
    rubrics = _by_id(load_rubrics([GOOD / "bank.yaml"]))
    vivid, voice = rubrics["vivid-prose"], rubrics["restrained-voice"]
    assert (vivid.scope, vivid.category, vivid.tags) == ("task", "stage2/creative", ("fixture",))
    # The rubric's own value replaces the default.
    assert (voice.scope, voice.category) == ("dataset", "style")
    assert voice.tags == ("fixture",)


def test_bank_fields_and_tiers_are_loaded():
    vivid = _by_id(load_rubrics(GOOD / "bank.yaml"))["vivid-prose"]
    imagery = vivid.criterion("imagery")
    assert imagery.weight == 2
    assert [t.label for t in imagery.tiers] == ["none", "some", "rich"]
    assert imagery.tiers[0].description == "No concrete detail."
    assert vivid.criterion("no-cliche").binary


def test_source_is_path_and_line_and_keeps_authored_source():
    rubrics = _by_id(load_rubrics([GOOD / "bank.yaml"]))
    path = str(GOOD / "bank.yaml")
    assert rubrics["vivid-prose"].source == f"{path}:11"
    assert rubrics["restrained-voice"].source == f"{path}:23 (Rubicon style anchors)"


def test_bank_header_is_kept():
    result = load_paths([GOOD / "bank.yaml"])
    info = result.banks[str(GOOD / "bank.yaml")]
    assert (info.name, info.version) == ("demo-creative", "2")


def test_single_rubric_file():
    [r] = load_rubrics([GOOD / "single.yaml"])
    assert r.id == "dosage-safety" and r.uses_points and r.aggregation.name == "points_ratio"
    assert r.criterion("c01").negative
    assert r.source == f"{GOOD / 'single.yaml'}:1"


def test_jsonl_mixes_own_schema_healthbench_and_writingbench():
    path = GOOD / "mixed.jsonl"
    rubrics = load_rubrics([path])
    assert [r.id for r in rubrics] == ["jsonl-own", "hb-fixture-1", "writingbench-7"]
    # Blank line 2 is skipped but line numbers still count it.
    assert [r.source for r in rubrics] == [f"{path}:1", f"{path}:3", f"{path}:4"]
    hb = rubrics[1]
    assert hb.category == "healthbench" and [c.points for c in hb.criteria] == [6, -7]
    assert len(rubrics[2].criteria) == 5


def test_folder_is_searched_recursively_in_sorted_order(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "b.yml").write_text((GOOD / "single.yaml").read_text())
    (tmp_path / "a.jsonl").write_text((GOOD / "mixed.jsonl").read_text())
    (tmp_path / "notes.md").write_text("not a rubric file: ignored")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.yaml").write_text("garbage: [")
    result = load_paths([tmp_path])
    assert result.problems == []
    assert [Path(f).name for f in result.files] == ["a.jsonl", "b.yml"]
    assert len(result.rubrics) == 4


def test_same_file_given_twice_is_read_once():
    result = load_paths([GOOD / "single.yaml", GOOD, str(GOOD / "single.yaml")])
    assert result.problems == []
    assert len(result.files) == 3


def test_load_rubrics_raises_problems_for_every_file(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text("id: a\ncriteria:\n  - {id: x, text: ''}\n")
    b = tmp_path / "b.jsonl"
    b.write_text('{"id": "b", "criteria": []}\n')
    with pytest.raises(Problems) as e:
        load_rubrics([a, b, tmp_path / "missing.yaml"])
    text = "\n".join(e.value.problems)
    assert f"{a}:3: rubric 'a': criteria[0].text: criterion text is empty" in text
    assert f"{b}:1: rubric 'b'" in text and "no criteria" in text
    assert f"{tmp_path / 'missing.yaml'}: does not exist" in text
    assert e.value.exit_code == 2


def test_default_with_a_bad_value_is_reported_once_at_the_defaults_line(tmp_path):
    p = tmp_path / "bank.yaml"
    p.write_text(
        "defaults:\n  scope: everywhere\nrubrics:\n"
        "  - {id: a, criteria: [{id: x, text: X.}]}\n"
        "  - {id: b, criteria: [{id: x, text: X.}]}\n"
    )
    problems = load_paths([p]).problems
    assert problems == [f"{p}:2: defaults.scope: Input should be 'dataset', 'task' or 'instance'"]


def test_unknown_aggregator_is_reported_at_its_line(tmp_path):
    p = tmp_path / "agg.yaml"
    p.write_text("id: a\naggregation:\n  name: no_such_aggregator\ncriteria:\n  - {id: x, text: X.}\n")
    [problem] = load_paths([p]).problems
    assert problem.startswith(f"{p}:3: rubric 'a': aggregation.name: unknown aggregator 'no_such_aggregator'")
