"""An interrupted self-rewarding eval stage resumes from its own files, U+2028 in the text included.

HealthBench-500 holds U+2028 (LINE SEPARATOR). JSON written with ``ensure_ascii=False`` keeps it raw, and
``str.splitlines`` splits at it, so the eval stage's old reader broke a record in two and the resumed
stage failed on its own output. The slow test below interrupts the real eval stage (SmolLM2 policy and
the constrained SmolLM2 judge of the tiny config) after its "before" files are written, runs it again
the way the runner does, and checks that the resumed stage took those files whole instead of redoing them.
"""

from __future__ import annotations

import json
import os

import pytest

from replications.self_rewarding import evaluation
from replications.self_rewarding.datasets import write_examples
from replications.self_rewarding.evaluation import _write_jsonl, finished_rows
from rubricrl.config import compose_experiment
from rubricrl.data.healthbench import load_examples, offline_path
from rubricrl.jsonl import read_jsonl_objects
from rubricrl.papers import load_stages
from rubricrl.train.stages import run_stage


def _has_u2028(obj) -> bool:
    return "\u2028" in json.dumps(obj, ensure_ascii=False)


def test_healthbench_500_really_holds_u2028():
    assert any(_has_u2028(e.raw) for e in load_examples(offline_path()))


def test_rows_with_u2028_written_by_the_stage_are_read_back_whole(tmp_path):
    path = tmp_path / "responses_before.jsonl"
    rows = [{"prompt_id": "a", "response": "line one\u2028line two\u2029para"}, {"prompt_id": "b", "response": "x"}]
    _write_jsonl(path, rows)
    assert "\u2028" in path.read_text(encoding="utf-8")  # written raw, as before
    assert finished_rows(path, 2) == rows  # the resume path takes the finished file as it is
    assert finished_rows(path, 3) is None  # incomplete: redone
    assert finished_rows(tmp_path / "missing.jsonl", 2) is None


class Preempted(Exception):
    """Stands for the job being killed while it grades the fine-tuned policy's answers."""


@pytest.mark.slow
def test_interrupted_eval_stage_resumes_from_records_holding_u2028(tmp_path, monkeypatch):
    from rubricrl.models import resolve_model

    pool = load_examples(offline_path())
    tricky = [e for e in pool if _has_u2028(e.raw)][:1]
    plain = sorted((e for e in pool if not _has_u2028(e.raw)), key=lambda e: len(e.rubric.criteria))[:1]
    assert tricky and plain
    cfg = compose_experiment(
        "self_rewarding",
        [f"run.root={tmp_path}", "run.name=u2028", "self_rewarding.eval.max_new_tokens=8", "wandb.mode=disabled"],
    )
    run_dir = cfg.run.dir
    write_examples(run_dir / "data" / "heldout.jsonl", [*tricky, *plain])  # what the data stage writes
    (run_dir / "train").mkdir(parents=True)
    os.symlink(resolve_model(cfg.policy.name), run_dir / "train" / "final")  # the "after" policy: same weights
    stage = next(s for s in load_stages("self_rewarding", cfg) if s.name == "eval")

    real_grade, real_sample = evaluation.grade_many, evaluation.sample_responses
    calls = {"grade": 0, "sample": 0}

    def counting(key, fn, fail_at=None):
        def wrapped(*a, **kw):
            calls[key] += 1
            if calls[key] == fail_at:
                raise Preempted()
            return fn(*a, **kw)

        return wrapped

    monkeypatch.setattr(evaluation, "grade_many", counting("grade", real_grade, fail_at=2))
    monkeypatch.setattr(evaluation, "sample_responses", counting("sample", real_sample))
    with pytest.raises(Preempted):
        run_stage(stage, cfg, run_dir)
    d = run_dir / "eval"
    assert not (d / "DONE").exists() and calls == {"grade": 2, "sample": 2}
    before = (d / "graded_before.jsonl").read_bytes()
    assert "\u2028" in before.decode("utf-8")  # the record of the tricky example, written raw
    assert not (d / "graded_after.jsonl").exists()

    calls.update(grade=0, sample=0)
    monkeypatch.setattr(evaluation, "grade_many", counting("grade", real_grade))
    out = run_stage(stage, cfg, run_dir)
    # resumed: both answer files and the "before" grades were taken as written; only the "after" grades were made
    assert calls == {"grade": 1, "sample": 0}
    assert (d / "graded_before.jsonl").read_bytes() == before
    assert (d / "DONE").is_file()
    for label in ("before", "after"):
        assert out[label]["n_examples"] == 2 and out[label]["overall_score:n_samples"] == 2, out[label]
        rows = [obj for _, obj in read_jsonl_objects(d / f"graded_{label}.jsonl")]
        assert [r["prompt_id"] for r in rows] == [tricky[0].prompt_id, plain[0].prompt_id]
        assert _has_u2028(rows[0]) and not _has_u2028(rows[1])
