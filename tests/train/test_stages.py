"""Stage runner: folders, markers, skipping, --stage preconditions, config changes, force."""

from __future__ import annotations

import json

import pytest

from rubricrl.config import compose_experiment
from rubricrl.errors import UserError
from rubricrl.train.stages import Stage, run_pipeline, stage_status


def _pipeline(calls):
    def make(name):
        def fn(ctx):
            calls.append(name)
            for i in ctx.stage.inputs:
                assert (ctx.input(i) / "out.txt").read_text() == i
            (ctx.dir / "out.txt").write_text(name)
            ctx.record_hash("out", name)
            return {"n": len(calls)}

        return fn

    return [Stage("a", make("a")), Stage("b", make("b"), ("a",)), Stage("c", make("c"), ("b",))]


def _cfg(tmp_path, *extra):
    return compose_experiment("rubicon", [f"run.root={tmp_path}", "run.name=r", *extra])


def test_writes_folders_and_skips_finished(tmp_path):
    calls: list[str] = []
    cfg = _cfg(tmp_path)
    run_pipeline(_pipeline(calls), cfg, echo=lambda m: None)
    assert calls == ["a", "b", "c"]
    d = tmp_path / "r" / "b"
    for f in ("config.yaml", "provenance.json", "metrics.json", "DONE"):
        assert (d / f).is_file(), f
    prov = json.loads((d / "provenance.json").read_text())
    assert prov["inputs"] == ["a"] and prov["hashes"] == {"out": "b"} and prov["input_markers"]["a"]["stage"] == "a"
    lines: list[str] = []
    run_pipeline(_pipeline(calls), cfg, echo=lines.append)
    assert calls == ["a", "b", "c"] and all("skipped" in m for m in lines)


def test_single_stage_needs_its_predecessors(tmp_path):
    calls: list[str] = []
    cfg = _cfg(tmp_path)
    with pytest.raises(UserError, match="needs a, b done first"):
        run_pipeline(_pipeline(calls), cfg, only="c", echo=lambda m: None)
    run_pipeline(_pipeline(calls), cfg, only="a", echo=lambda m: None)
    run_pipeline(_pipeline(calls), cfg, only="b", echo=lambda m: None)
    run_pipeline(_pipeline(calls), cfg, only="c", echo=lambda m: None)
    assert calls == ["a", "b", "c"] and stage_status(cfg.run.dir, "c") == "done"
    with pytest.raises(UserError, match="no stage 'zzz'"):
        run_pipeline(_pipeline(calls), cfg, only="zzz")


def test_a_failed_stage_leaves_no_marker_and_reruns(tmp_path):
    cfg = _cfg(tmp_path)

    def boom(ctx):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run_pipeline([Stage("a", boom)], cfg, echo=lambda m: None)
    assert stage_status(cfg.run.dir, "a") == "partial"
    calls: list[str] = []
    run_pipeline(_pipeline(calls)[:1], cfg, echo=lambda m: None)
    assert calls == ["a"]


def test_changed_config_is_refused_and_force_moves_the_old_folder_aside(tmp_path):
    calls: list[str] = []
    run_pipeline(_pipeline(calls), _cfg(tmp_path), echo=lambda m: None)
    changed = _cfg(tmp_path, "grpo.max_steps=3")
    with pytest.raises(UserError, match="different configuration"):
        run_pipeline(_pipeline(calls), changed, echo=lambda m: None)
    run_pipeline(_pipeline(calls), changed, force=True, echo=lambda m: None)
    assert calls == ["a", "b", "c", "a", "b", "c"]
    assert len(list((tmp_path / "r").glob("a.old-*"))) == 1
    # W&B / site settings do not count as a different configuration
    run_pipeline(_pipeline(calls), _cfg(tmp_path, "grpo.max_steps=3", "wandb.mode=disabled"), echo=lambda m: None)
    assert len(calls) == 6


def test_bad_pipeline_definitions():
    with pytest.raises(ValueError, match="not an earlier stage"):
        run_pipeline([Stage("b", lambda c: {}, ("a",))], compose_experiment("rubicon", []))


def _training_stage(fail: bool = False):
    def fn(ctx):
        for step in (2, 4):
            ck = ctx.dir / "checkpoints" / f"checkpoint-{step}"
            ck.mkdir(parents=True)
            (ck / "trainer_state.json").write_text("{}")
            (ck / "optimizer.pt").write_bytes(b"x" * 1000)
        (ctx.dir / "final").mkdir()
        (ctx.dir / "final" / "model.safetensors").write_bytes(b"w")
        if fail:
            raise RuntimeError("judge server shut down badly after training")
        return {}

    return [Stage("train", fn)]


@pytest.mark.parametrize("keep", [True, False])
def test_checkpoints_go_only_once_the_stage_is_done_and_only_when_asked(tmp_path, keep, capsys):
    from rubricrl.train.checkpoint import last_checkpoint

    cfg = _cfg(tmp_path, f"run.keep_checkpoints={str(keep).lower()}")
    run_pipeline(_training_stage(), cfg, echo=lambda m: None)
    d = tmp_path / "r" / "train"
    assert (d / "DONE").is_file() and (d / "final" / "model.safetensors").is_file()
    left = sorted(p.name for p in (d / "checkpoints").iterdir())
    err = capsys.readouterr().err
    if keep:
        assert left == ["checkpoint-2", "checkpoint-4"] and "deleted" not in err
    else:
        assert left == [] and last_checkpoint(d / "checkpoints") is None
        assert "run.keep_checkpoints=false: deleted" in err and "(0.00 GB)" in err


def test_a_stage_failing_after_training_keeps_its_checkpoints_for_the_rerun(tmp_path):
    from rubricrl.train.checkpoint import last_checkpoint

    cfg = _cfg(tmp_path, "run.keep_checkpoints=false")
    with pytest.raises(RuntimeError):
        run_pipeline(_training_stage(fail=True), cfg, echo=lambda m: None)
    d = tmp_path / "r" / "train"
    assert not (d / "DONE").exists() and last_checkpoint(d / "checkpoints") == d / "checkpoints" / "checkpoint-4"


def test_drop_checkpoints_finishes_an_interrupted_deletion_and_spares_other_files(tmp_path):
    from rubricrl.train.checkpoint import drop_checkpoints, last_checkpoint

    for name in ("checkpoint-1", ".deleting-checkpoint-0"):  # the second: a deletion cut short earlier
        (tmp_path / name).mkdir()
        (tmp_path / name / "trainer_state.json").write_text("{}")
        (tmp_path / name / "model.safetensors").write_bytes(b"m" * 100)
    (tmp_path / "checkpoint-notes.txt").write_text("mine")
    (tmp_path / "runs").mkdir()
    assert drop_checkpoints(tmp_path) == 2 * (100 + 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-notes.txt", "runs"]
    assert last_checkpoint(tmp_path) is None and drop_checkpoints(tmp_path / "absent") == 0
