"""Graded interchange format: validation with path:line, truncated last line, resume without loss."""

from __future__ import annotations

import json

import pytest

from rubricrl.errors import Problems
from rubricrl.judge.interfaces import Verdict
from rubricrl.scoring.graded import GradedRecord, GradedWriter, check_record, make_record, read_graded
from tests.scoring.helpers import example, graded, three_examples


def _write(path, objs, tail=""):
    path.write_text("".join(json.dumps(o) + "\n" for o in objs) + tail, encoding="utf-8")


def test_roundtrip_keeps_published_fields_unchanged(tmp_path):
    ex = example("p1", [(5, ["axis:accuracy"]), (-3, ["axis:accuracy"])], ["theme:t"])
    ex["canary"] = "healthbench:xyz"
    ex["ideal_completions_data"] = {"ideal_completion": "ideal", "ideal_completions_group": "Group 1"}
    rec = make_record(
        ex,
        "resp",
        [
            Verdict("c00", met=True, explanation="ok", attempts=1),
            Verdict("c01", met=None, error="unparsable", attempts=3),
        ],
        judge={"model": "m", "mode": "binary"},
    )
    out = tmp_path / "g.jsonl"
    with GradedWriter(out) as w:
        w.append(rec)
    back = read_graded(out).records[0]
    assert back.example() == ex
    assert back.response == "resp" and back.data["judge"] == {"model": "m", "mode": "binary"}
    assert back.grades[1] == {
        "criteria_met": None,
        "explanation": "",
        "error": "unparsable",
        "judge": "",
        "attempts": 3,
    }
    assert back.n_ungraded == 1
    assert [v.met for v in back.verdicts()] == [True, None]
    assert [c.id for c in back.criteria()] == ["c00", "c01"]


def test_misaligned_grades_and_bad_types_name_the_line(tmp_path):
    good, short, badtype = three_examples()
    short["grades"] = short["grades"][:1]
    badtype["grades"][0]["criteria_met"] = "yes"
    badtype["response"] = 3
    p = tmp_path / "g.jsonl"
    _write(p, [good, short, badtype])
    with pytest.raises(Problems) as e:
        read_graded(p)
    probs = e.value.problems
    assert any(s.startswith(f"{p}:2: ") and "'grades' has 1 entries but 'rubrics' has 2" in s for s in probs)
    assert any(s.startswith(f"{p}:3: ") and "grades[0]: 'criteria_met' must be true, false or null" in s for s in probs)
    assert any(s.startswith(f"{p}:3: ") and "'response'" in s for s in probs)
    assert not any(s.startswith(f"{p}:1:") for s in probs)


def test_duplicate_prompt_id_and_bad_json_in_the_middle_are_errors(tmp_path):
    a, b, _ = three_examples()
    p = tmp_path / "g.jsonl"
    p.write_text(json.dumps(a) + "\n{not json\n" + json.dumps(b) + "\n" + json.dumps(a) + "\n")
    with pytest.raises(Problems) as e:
        read_graded(p)
    assert any(s.startswith(f"{p}:2: invalid JSON") for s in e.value.problems)
    assert any(s.startswith(f"{p}:4: duplicate prompt_id 'A'") for s in e.value.problems)


def test_truncated_last_line_is_reported_not_fatal(tmp_path):
    a, b, c = three_examples()
    p = tmp_path / "g.jsonl"
    _write(p, [a, b], tail=json.dumps(c)[:40])
    f = read_graded(p)
    assert f.truncated_tail
    assert [r.prompt_id for r in f.records] == ["A", "B"]


def test_resuming_writer_drops_truncated_tail_and_keeps_complete_lines(tmp_path):
    a, b, c = three_examples()
    p = tmp_path / "g.jsonl"
    _write(p, [a, b], tail=json.dumps(c)[:40])
    existing = read_graded(p)
    with GradedWriter(p, existing) as w:
        w.append(GradedRecord(c))
    f = read_graded(p)
    assert not f.truncated_tail
    assert [r.prompt_id for r in f.records] == ["A", "B", "C"]
    assert p.read_text().count("\n") == 3
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_writer_adds_missing_final_newline_before_appending(tmp_path):
    a, b, _ = three_examples()
    p = tmp_path / "g.jsonl"
    p.write_text(json.dumps(a))  # complete line, no newline (hand-edited file)
    existing = read_graded(p)
    assert not existing.truncated_tail
    with GradedWriter(p, existing) as w:
        w.append(GradedRecord(b))
    assert [r.prompt_id for r in read_graded(p).records] == ["A", "B"]


def test_graded_helper_is_valid():
    assert check_record(graded("x", [(1, [], True)], [])) == []
