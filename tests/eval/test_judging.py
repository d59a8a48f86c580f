"""Which judge an evaluation task uses, and failing early when it cannot be reached."""

from __future__ import annotations

import pytest

from rubricrl.configs import config_path
from rubricrl.errors import UserError
from rubricrl.evaluation import judging


def test_metadata_then_env_then_default(monkeypatch, tmp_path):
    monkeypatch.delenv(judging.JUDGE_ENV, raising=False)
    assert judging.resolve_judge({}) == str(config_path("judge", "smollm2-vllm").resolve())
    monkeypatch.setenv(judging.JUDGE_ENV, "gpt41-healthbench")
    assert judging.resolve_judge(None).endswith("gpt41-healthbench.yaml")
    own = tmp_path / "mine.yaml"
    own.write_text("backend: programmatic\n")
    assert judging.resolve_judge({"judge": str(own)}) == str(own.resolve())


def test_unknown_judge_is_a_user_error():
    with pytest.raises(UserError, match="no such judge config"):
        judging.resolve_judge({"judge": "no-such-judge"})


def test_prepare_fails_before_generation_when_the_server_is_not_there(tmp_path):
    cfg = tmp_path / "judge.yaml"
    cfg.write_text(f"backend: openai\nmodel: m\nbase_url_file: {tmp_path / 'missing.json'}\n")
    with pytest.raises(UserError, match="missing.json"):
        judging.prepare({"judge": str(cfg)})


def test_tiered_switch_keeps_a_tiered_config(tmp_path):
    binary = tmp_path / "b.yaml"
    binary.write_text(
        "backend: openai\nmodel: m\nbase_url: http://127.0.0.1:9/v1\nmode: binary\ntemplate: healthbench\n"
    )
    cfg = judging.load_config(str(binary), tiered=True)
    assert (cfg.mode, cfg.template) == ("tiered", "tiered")
    assert judging.load_config(str(binary)).mode == "binary"
    summary = judging.summary(cfg, str(binary))
    assert summary["mode"] == "tiered" and len(summary["template_sha256"]) == 64
