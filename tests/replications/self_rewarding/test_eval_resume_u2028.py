"""An interrupted self-rewarding eval stage resumes from its own files, U+2028 in the text included.

HealthBench-500 holds U+2028 (LINE SEPARATOR). JSON written with ``ensure_ascii=False`` keeps it raw, and
``str.splitlines`` splits at it, so the eval stage's old reader broke a record in two and the resumed
stage failed on its own output.
"""

from __future__ import annotations

from replications.self_rewarding.evaluation import _write_jsonl, finished_rows
from rubricrl.data.healthbench import load_examples, offline_path


def test_healthbench_500_really_holds_u2028():
    import json

    assert any("\u2028" in json.dumps(e.raw, ensure_ascii=False) for e in load_examples(offline_path()))


def test_rows_with_u2028_written_by_the_stage_are_read_back_whole(tmp_path):
    path = tmp_path / "responses_before.jsonl"
    rows = [{"prompt_id": "a", "response": "line one\u2028line two\u2029para"}, {"prompt_id": "b", "response": "x"}]
    _write_jsonl(path, rows)
    assert "\u2028" in path.read_text(encoding="utf-8")  # written raw, as before
    assert finished_rows(path, 2) == rows  # the resume path takes the finished file as it is
    assert finished_rows(path, 3) is None  # incomplete: redone
    assert finished_rows(tmp_path / "missing.jsonl", 2) is None
