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
