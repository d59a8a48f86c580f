"""The in-container driver around NeMo RL's run_grpo.py (NeMo RL itself is replaced by a stand-in here)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import yaml

from rubricrl.errors import UserError
from rubricrl.train.nemo_rl_driver import run_grpo

REPO = Path(__file__).resolve().parents[2]

RUN_GRPO = """
import sys
CALLS = {}
def _select_trainer(master_config):
    def trainer(policy, policy_generation, *a, **k):
        CALLS["trained"] = True
    return trainer
def main():
    CALLS["argv"] = list(sys.argv)
    gen = type("Gen", (), {"dp_openai_server_base_urls": ["http://n1:11001/v1", None, "http://n2:11001/v1"]})()
    _select_trainer({})("policy", gen)
"""


@pytest.fixture
def fake_nemo(tmp_path, monkeypatch):
    root = tmp_path / "nemo-rl"
    (root / "examples").mkdir(parents=True)
    (root / "examples" / "__init__.py").write_text("")
    (root / "examples" / "run_grpo.py").write_text(RUN_GRPO)
    registered = []
    monkeypatch.setattr("rubricrl.train.nemo_rl_env.register", lambda: registered.append(True))
    grpo = types.ModuleType("nemo_rl.algorithms.grpo")
    grpo.async_grpo_train = lambda *a, **k: None
    for name, mod in {
        "nemo_rl": types.ModuleType("nemo_rl"),
        "nemo_rl.algorithms": types.ModuleType("a"),
        "nemo_rl.algorithms.grpo": grpo,
    }.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delitem(sys.modules, "examples", raising=False)
    monkeypatch.delitem(sys.modules, "examples.run_grpo", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.chdir(tmp_path)
    return root, registered


def _self_reward_config(tmp_path: Path) -> Path:
    src = REPO / "replications/rubicon/nemo_rl/grpo-qwen3-30ba3b-4n8g-megatron-stage2.yaml"
    cfg = yaml.safe_load(src.read_text())
    cfg["env"]["rubric"]["judge_is_policy"] = True
    cfg["env"]["rubric"]["judge"]["base_url_file"] = "runs/x/policy.endpoints.json"
    out = tmp_path / "cfg.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return out


def test_driver_registers_publishes_policy_endpoints_and_absolutises_paths(fake_nemo, tmp_path):
    root, registered = fake_nemo
    run_grpo(_self_reward_config(tmp_path), ["grpo.max_num_steps=2"], root)
    assert registered == [True]
    calls = sys.modules["examples.run_grpo"].CALLS
    assert calls["trained"]
    endpoints = json.loads((tmp_path / "runs/x/policy.endpoints.json").read_text())
    assert endpoints["base_urls"] == ["http://n1:11001/v1", "http://n2:11001/v1"]
    argv = calls["argv"]
    assert argv[1:3] == ["--config", str((tmp_path / "cfg.yaml").resolve())]
    assert f"env.rubric.judge.base_url_file={tmp_path / 'runs/x/policy.endpoints.json'}" in argv
    assert any(a.startswith("data.train.data_path=/") for a in argv) and argv[3] == "grpo.max_num_steps=2"


def test_overridden_endpoint_file_is_the_one_published(fake_nemo, tmp_path):
    # Regression: the driver read base_url_file from the YAML, so an override left the env waiting 900 s.
    root, _ = fake_nemo
    run_grpo(_self_reward_config(tmp_path), ["env.rubric.judge.base_url_file=elsewhere/urls.json"], root)
    assert json.loads((tmp_path / "elsewhere/urls.json").read_text())["base_urls"][0] == "http://n1:11001/v1"
    assert not (tmp_path / "runs/x/policy.endpoints.json").exists()
    argv = sys.modules["examples.run_grpo"].CALLS["argv"]
    assert f"env.rubric.judge.base_url_file={tmp_path / 'elsewhere/urls.json'}" in argv
    assert sum(a.startswith("env.rubric.judge.base_url_file=") for a in argv) == 1


def test_every_path_is_absolute_after_relative_stage_overrides(fake_nemo, tmp_path):
    # Regression: rollouts_path stayed relative, and relative stage overrides (run.root relative) undid the rest.
    root, _ = fake_nemo
    (tmp_path / "runs/r/stage1_rl/final").mkdir(parents=True)
    stage = [
        "data.train.data_path=runs/r/stage2_rl/nemo_rl/train.jsonl",
        "env.rubric.metrics_path=runs/r/stage2_rl/nemo_rl/env_metrics.jsonl",
        "env.rubric.rollouts_path=runs/r/stage2_rl/rollouts.jsonl",
        "policy.model_name=runs/r/stage1_rl/final",
        "++logger.wandb.group=r",
    ]
    run_grpo(_self_reward_config(tmp_path), stage, root)
    argv = sys.modules["examples.run_grpo"].CALLS["argv"][3:]
    values = dict(a.lstrip("+").split("=", 1) for a in argv)
    for key in (
        "data.train.data_path",
        "env.rubric.metrics_path",
        "env.rubric.rollouts_path",
        "policy.model_name",
        "checkpointing.checkpoint_dir",
        "logger.log_dir",
        "env.rubric.judge.base_url_file",
    ):
        assert Path(values[key]).is_absolute(), key
    assert values["env.rubric.rollouts_path"] == str(tmp_path / "runs/r/stage2_rl/rollouts.jsonl")
    assert values["policy.model_name"] == str(tmp_path / "runs/r/stage1_rl/final")
    assert len(argv) == len(values)  # each key once: no competing relative and absolute values
    # A hub id is not a local path and stays as it is.
    run_grpo(_self_reward_config(tmp_path), ["policy.model_name=Qwen/Qwen3-30B-A3B"], root)
    assert "policy.model_name=Qwen/Qwen3-30B-A3B" in sys.modules["examples.run_grpo"].CALLS["argv"]


def test_driver_without_nemo_rl_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="nemo-rl:v0.7.0 container"):
        run_grpo(_self_reward_config(tmp_path), [], tmp_path / "nowhere")
