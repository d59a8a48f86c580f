"""Self-rewarding data: fixed-seed split, caps after the split, Easy = full - Hard by prompt_id, TRL rows."""

from __future__ import annotations

import json
import random

import pytest

from replications.self_rewarding import datasets as srd
from rubricrl.data import healthbench as hb
from rubricrl.errors import UserError
from rubricrl.rubrics.importers import load_healthbench_jsonl


def _record(i: int, n_items: int = 2, chars: int = 20) -> dict:
    return {
        "prompt_id": f"id-{i:04d}",
        "prompt": [{"role": "user", "content": "x" * chars}],
        "rubrics": [
            {"criterion": f"item {k}", "points": 5 if k % 2 == 0 else -3, "tags": ["axis:accuracy"]}
            for k in range(n_items)
        ],
        "example_tags": ["theme:test"],
        "ideal_completions_data": None,
    }


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _examples(tmp_path, records, name="x.jsonl"):
    return load_healthbench_jsonl(_write(tmp_path / name, records))


def test_split_is_fixed_by_seed_and_ids_not_order(tmp_path):
    recs = [_record(i) for i in range(100)]
    exs = _examples(tmp_path, recs)
    train, held = srd.build_split(exs, 0.2, seed=0)
    shuffled = _examples(tmp_path, random.Random(1).sample(recs, len(recs)), "y.jsonl")
    train2, held2 = srd.build_split(shuffled, 0.2, seed=0)
    assert len(held) == 20 and len(train) == 80
    assert {e.prompt_id for e in held} == {e.prompt_id for e in held2}
    assert not {e.prompt_id for e in held} & {e.prompt_id for e in train}
    _, held3 = srd.build_split(exs, 0.2, seed=1)
    assert {e.prompt_id for e in held3} != {e.prompt_id for e in held}


def test_caps_apply_after_the_split_and_never_move_examples_between_parts(tmp_path):
    recs = [_record(i, n_items=2 + i % 5, chars=10 + 10 * (i % 7)) for i in range(200)]
    exs = _examples(tmp_path, recs)
    _, held_all = srd.build_split(exs, 0.25, seed=0)
    caps = srd.SizeCaps(max_criteria=3, max_prompt_chars=40, max_examples=5)
    train, held = srd.build_split(exs, 0.25, 0, caps, caps)
    assert len(train) == 5 and len(held) == 5
    assert all(len(e.rubric.criteria) <= 3 and srd.prompt_chars(e) <= 40 for e in train + held)
    assert {e.prompt_id for e in held} <= {e.prompt_id for e in held_all}
    with pytest.raises(UserError, match="no training example"):
        srd.build_split(exs, 0.25, 0, srd.SizeCaps(max_criteria=1))


def test_easy_is_full_minus_hard_by_prompt_id(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    (root / "healthbench").mkdir(parents=True)
    full = [_record(i) for i in range(30)]
    hard = [_record(i) for i in (27, 3, 11, 5)]  # order differs from full
    for subset, recs in (("full", full), ("hard", hard)):
        monkeypatch.setitem(hb.OFFICIAL, subset, hb.OfficialFile(hb.OFFICIAL[subset].filename, None))
        _write(hb.cached_path(subset, root), recs)
    easy = srd.load_training_pool("easy", root)
    assert [e.prompt_id for e in easy] == [
        r["prompt_id"] for r in full if r["prompt_id"] not in {h["prompt_id"] for h in hard}
    ]
    assert len(easy) == 26


def test_written_files_are_the_published_records_and_rows_carry_the_rubric_key(tmp_path):
    recs = [_record(i, n_items=3) for i in range(4)]
    exs = _examples(tmp_path, recs)
    srd.write_examples(tmp_path / "out.jsonl", exs)
    assert [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()] == recs
    back = srd.read_examples(tmp_path / "out.jsonl")
    rows = srd.trl_rows(back, system_prompt="be brief")
    lookup = srd.rubric_lookup(back)
    assert rows[0]["prompt"][0] == {"role": "system", "content": "be brief"}
    assert rows[2]["prompt"][1]["content"] == "x" * 20
    assert [c.points for c in lookup[rows[1][srd.PROMPT_ID]].criteria] == [5, -3, 5]
    assert lookup["id-0001"].aggregation.name == "points_ratio"
