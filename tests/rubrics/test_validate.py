"""``rubricrl validate`` and ``validate_paths``: every class of problem names its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from rubricrl.cli import main
from rubricrl.rubrics import verifiers
from rubricrl.rubrics.loader import validate_paths
from rubricrl.rubrics.verifiers import VerifierResult

FIX = Path(__file__).parent / "fixtures"
GOOD, BAD = FIX / "good", FIX / "bad"
TEST_VERIFIER = "rubricrl_test_max_words"


@pytest.fixture
def max_words_verifier():
    """Register a verifier (only for this test) so argument checking can be exercised."""
    try:
        verifiers.check_args("", {})  # load the built-ins first so the registry is complete
    except Exception:  # noqa: BLE001 - built-ins may not exist yet; the test verifier is enough
        pass

    def max_words(response: str, n: int) -> VerifierResult:
        return VerifierResult(passed=len(response.split()) <= n)

    verifiers.VERIFIERS[TEST_VERIFIER] = max_words
    yield
    del verifiers.VERIFIERS[TEST_VERIFIER]


def _problems(*paths) -> list[str]:
    return validate_paths([str(p) for p in paths])[1]


def _one(problems: list[str], where: str, *words: str) -> str:
    """The single problem at ``where`` (``path:line``) containing every word."""
    hits = [p for p in problems if p.startswith(where + ": ") and all(w in p for w in words)]
    assert len(hits) == 1, f"expected one problem at {where} with {words}, got:\n" + "\n".join(problems)
    return hits[0]


def test_good_fixtures_pass_with_counts():
    stats, problems = validate_paths([GOOD])
    assert problems == []
    assert (stats.files, stats.rubrics) == (3, 6)
    assert stats.criteria == 3 + 2 + (1 + 2 + 5)


def test_invalid_yaml_points_at_the_error_and_where_it_started():
    p = BAD / "invalid_yaml.yaml"
    _one(_problems(p), f"{p}:7", "invalid YAML", "line 5")


def test_missing_fields():
    p = BAD / "missing_fields.yaml"
    problems = _problems(p)
    _one(problems, f"{p}:2", "'no-criteria'", "criteria: missing required key")
    _one(problems, f"{p}:6", "'no-text'", "criteria[0].text: missing required key")
    assert len(problems) == 2


def test_points_problems():
    p = BAD / "points.yaml"
    problems = _problems(p)
    _one(problems, f"{p}:6", "'non-numeric'", "criteria[0].points", "valid number")
    _one(problems, f"{p}:8", "'all-negative'", "no criterion has positive points")
    _one(problems, f"{p}:13", "'boolean-weight'", "criteria[0].weight", "boolean")
    assert len(problems) == 3


def test_empty_criterion_text():
    p = BAD / "empty_text.yaml"
    assert _problems(p) == [f"{p}:6: rubric 'empty-text': criteria[1].text: criterion text is empty"]


def test_duplicate_criterion_ids_and_rubric_ids_across_files():
    y, j = BAD / "duplicates.yaml", BAD / "duplicates_other.jsonl"
    problems = _problems(y, j)
    _one(problems, f"{y}:6", "duplicate criterion id 'x'", "criteria[0]")
    _one(problems, f"{j}:1", "duplicate rubric id 'shared-id'", f"first defined at {y}:7")
    assert len(problems) == 2
    # Each file alone has no rubric-id clash.
    assert _problems(j) == []


def test_non_monotone_tiers():
    p = BAD / "tiers.yaml"
    _one(_problems(p), f"{p}:6", "tiers must be strictly increasing", "[5.0, 1.0]")


def test_unknown_verifier_and_bad_verifier_args(max_words_verifier):
    p = BAD / "verifiers.yaml"
    problems = _problems(p)
    _one(problems, f"{p}:7", "criteria[0].verifier", "unknown verifier 'no_such_verifier_xyz'")
    _one(problems, f"{p}:12", "criteria[1].args", TEST_VERIFIER, "unit")
    assert len(problems) == 2  # the third criterion uses the verifier correctly


def test_bank_shape_problems():
    p = BAD / "shapes.yaml"
    problems = _problems(p)
    _one(problems, f"{p}:1", "bank.owner", "unknown key")
    _one(problems, f"{p}:3", "defaults.scope")
    _one(problems, f"{p}:4", "defaults.id", "not a default rubric field")
    _one(problems, f"{p}:5", "unknown top-level key 'rubric'", "did you mean 'rubrics'")
    _one(problems, f"{p}:6", "rubrics[0]", "expected a mapping")
    _one(problems, f"{p}:10", "'typo'", "wieght", "did you mean 'weight'")
    assert len(problems) == 6


def test_top_level_list_and_string():
    a, b = BAD / "top_list.yaml", BAD / "top_string.yaml"
    problems = _problems(a, b)
    _one(problems, f"{a}:1", "top level is a list", "rubrics:")
    _one(problems, f"{b}:1", "top level is a string")


def test_jsonl_records_report_their_line():
    p = BAD / "records.jsonl"
    problems = _problems(p)
    assert not any(x.startswith(f"{p}:1:") or x.startswith(f"{p}:4:") for x in problems)
    _one(problems, f"{p}:2", "prompt:")
    _one(problems, f"{p}:2", "rubrics[0].criterion", "empty")
    _one(problems, f"{p}:2", "rubrics[0].points", "number")
    _one(problems, f"{p}:3", "invalid JSON")
    _one(problems, f"{p}:5", "expected a JSON object")
    _one(problems, f"{p}:6", "not a rubric")
    _one(problems, f"{p}:7", "no item has positive points")
    _one(problems, f"{p}:8", "checklist[0].9-10", "missing")
    _one(problems, f"{p}:9", "'own'", "criteria[0].points")


def test_unreadable_inputs(tmp_path):
    (tmp_path / "empty.yaml").write_bytes(b"")
    (tmp_path / "blank.jsonl").write_bytes(b"\n  \n")
    (tmp_path / "latin1.yaml").write_bytes("id: a\ncriteria:\n  - {id: x, text: caf\xe9}\n".encode("latin-1"))
    (tmp_path / "binary.jsonl").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "comments.yaml").write_text("# nothing here yet\n")
    (tmp_path / "notes.txt").write_text("id: a")
    problems = _problems(*sorted(tmp_path.iterdir()), tmp_path / "nope.yaml", tmp_path / "no_dir")
    _one(problems, str(tmp_path / "empty.yaml"), "file is empty")
    _one(problems, str(tmp_path / "blank.jsonl"), "file is empty")
    _one(problems, f"{tmp_path / 'latin1.yaml'}:3", "not valid UTF-8")
    _one(problems, f"{tmp_path / 'binary.jsonl'}:2", "not valid UTF-8")  # byte 10 is a newline
    _one(problems, str(tmp_path / "comments.yaml"), "no content")
    _one(problems, str(tmp_path / "notes.txt"), "unsupported file type")
    _one(problems, str(tmp_path / "nope.yaml"), "does not exist")
    _one(problems, str(tmp_path / "no_dir"), "does not exist")


GARBAGE = {
    "tabs.yaml": "rubrics:\n\t- id: a\n",
    "unhashable.yaml": "? [a, b]\n: c\n",
    "multidoc.yaml": "id: a\n---\nid: b\n",
    "recursive.yaml": "id: &a [*a]\ncriteria: &c [*c]\n",
    "laughs.yaml": "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else 'x'}]\n" for i in range(9))
    + "id: x\ncriteria: *l8\n",
    "deep.yaml": "[" * 3000,
    "nulls.yaml": "rubrics:\n  - null\n  - id: null\n    criteria: null\n",
    "weird_keys.yaml": "rubrics:\n  - id: a\n    1: 2\n    null: x\n    criteria: {id: a, text: b}\n",
    "dates.yaml": "id: 2024-01-01\ncriteria:\n  - {id: 1, text: [a], points: .nan}\n",
    "strings.jsonl": '"x"\n1\nnull\n[]\n{"criteria": "none"}\n{"rubrics": 3}\n{"checklist": {}}\n',
    "nested.jsonl": "[" * 100000 + "\n",
    "huge_number.jsonl": '{"id": "a", "criteria": [{"id": "x", "text": "y", "points": 1e999}]}\n',
    "bom.yaml": "\ufeffid: a\ncriteria: [{id: x, text: y}]\n",
}


def test_garbage_never_raises_and_always_names_the_file(tmp_path):
    for name, text in GARBAGE.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    stats, problems = validate_paths([tmp_path])
    assert stats.files == len(GARBAGE)
    bad_files = {n for n in GARBAGE if n != "bom.yaml"}
    for name in bad_files:
        assert any(p.startswith(str(tmp_path / name)) for p in problems), f"no problem reported for {name}"
    assert not any(p.startswith(str(tmp_path / "bom.yaml")) for p in problems)


# ------------------------------------------------------------------------------------------- CLI


def test_cli_ok(capsys):
    assert main(["validate", str(GOOD)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "ok: 3 files, 6 rubrics, 13 criteria"


def test_cli_reports_every_problem_then_a_summary(capsys):
    rc = main(["validate", str(BAD / "points.yaml"), str(BAD / "empty_text.yaml"), str(GOOD / "single.yaml")])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert any(x.startswith(f"{BAD / 'points.yaml'}:6: ") for x in lines)
    assert any(x.startswith(f"{BAD / 'points.yaml'}:8: ") for x in lines)
    assert any(x.startswith(f"{BAD / 'empty_text.yaml'}:6: ") for x in lines)
    assert lines[-1].startswith("invalid: 4 problems")
    assert "Traceback" not in err


def test_cli_missing_path_exits_2(capsys, tmp_path):
    assert main(["validate", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'missing'}: does not exist" in err


def test_cli_garbage_exits_2_without_traceback(capsys, tmp_path):
    for name, text in GARBAGE.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "binary.yaml").write_bytes(b"\x00\x01\xff" * 100)
    assert main(["validate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" not in err
