import json

from rubricrl.rubrics.importers import iter_jsonl


def test_unicode_line_separator_inside_string_is_not_a_line_break(tmp_path):
    p = tmp_path / "x.jsonl"
    rec = {"prompt_id": "a", "text": "one\u2028two\u0085three"}
    p.write_text(json.dumps(rec, ensure_ascii=False) + "\r\n" + json.dumps({"prompt_id": "b"}) + "\n", encoding="utf-8")
    rows = list(iter_jsonl(p))
    assert [(n, bad) for n, _, bad in rows] == [(1, None), (2, None)]
    assert rows[0][1] == rec
