"""The driver (``rubricrl nemo-config train``) through NeMo RL v0.7.0's own ``examples/run_grpo.py``.

``run_grpo.main()`` runs for real up to ``init_ray`` (config loading with inheritance, Hydra overrides,
``MasterConfig``, the experiment folder); ``init_ray`` is where a GPU cluster would start, so the test stops
there and inspects the config NeMo RL built.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


class _Reached(Exception):
    def __init__(self, config):
        super().__init__("init_ray reached")
        self.config = config


@pytest.fixture
def run_grpo_module(nemo_rl_root, monkeypatch, tmp_path):
    import examples.run_grpo as mod

    def stop():
        raise _Reached(sys._getframe(1).f_locals["config"])

    monkeypatch.setattr(mod, "init_ray", stop)
    monkeypatch.chdir(tmp_path)
    return mod


def _config(tmp_path: Path, nemo_rl_root: Path, name: str) -> Path:
    src = next(REPO.glob(f"replications/*/nemo_rl/{name}"))
    cfg = yaml.safe_load(src.read_text(encoding="utf-8"))
    cfg["defaults"] = str(nemo_rl_root / "examples" / "configs" / "grpo_math_1B.yaml")
    out = tmp_path / "config.yaml"
    out.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return out


def test_self_rewarding_driver_reaches_init_ray_with_effective_absolute_paths(run_grpo_module, nemo_rl_root, tmp_path):
    from rubricrl.train.nemo_rl_driver import run_grpo

    (tmp_path / "runs/sr/rl_start").mkdir(parents=True)
    config = _config(tmp_path, nemo_rl_root, "grpo-qwen3-32b-4n8g-self-reward.yaml")
    stage = [
        "data.train.data_path=runs/sr/rl/nemo_rl/train.jsonl",
        "checkpointing.checkpoint_dir=runs/sr/ckpt",
        "logger.log_dir=runs/sr/logs",
        "env.rubric.metrics_path=runs/sr/rl/nemo_rl/env_metrics.jsonl",
        "env.rubric.rollouts_path=runs/sr/rl/rollouts.jsonl",
        "policy.model_name=runs/sr/rl_start",
        "++logger.wandb.group=sr",
        "env.rubric.judge.base_url_file=mine/policy.urls.json",
    ]
    select = run_grpo_module._select_trainer
    with pytest.raises(_Reached) as reached:
        run_grpo(config, stage, nemo_rl_root)
    master = reached.value.config
    rubric = master.env["rubric"]
    assert rubric["judge"]["base_url_file"] == str(tmp_path / "mine/policy.urls.json")  # the override counts
    assert rubric["judge_is_policy"] is True
    assert rubric["metrics_path"] == str(tmp_path / "runs/sr/rl/nemo_rl/env_metrics.jsonl")
    assert rubric["rollouts_path"] == str(tmp_path / "runs/sr/rl/rollouts.jsonl")
    assert master.data["train"]["data_path"] == str(tmp_path / "runs/sr/rl/nemo_rl/train.jsonl")
    assert master.policy["model_name"] == str(tmp_path / "runs/sr/rl_start")
    assert master.checkpointing["checkpoint_dir"] == str(tmp_path / "runs/sr/ckpt")
    assert master.logger["log_dir"].startswith(str(tmp_path / "runs/sr/logs"))  # NeMo RL adds exp_<n>
    assert master.logger["wandb"]["group"] == "sr"
    assert run_grpo_module._select_trainer is select  # the wrapper is removed again


def test_rubicon_stage2_driver_keeps_hub_ids_and_the_judge_server_endpoint(run_grpo_module, nemo_rl_root, tmp_path):
    from rubricrl.train.nemo_rl_driver import run_grpo

    config = _config(tmp_path, nemo_rl_root, "grpo-qwen3-30ba3b-8n8g-megatron-stage2.yaml")
    with pytest.raises(_Reached) as reached:
        run_grpo(config, ["policy.model_name=Qwen/Qwen3-30B-A3B", "grpo.max_num_steps=3"], nemo_rl_root)
    master = reached.value.config
    assert master.policy["model_name"] == "Qwen/Qwen3-30B-A3B" and master.grpo["max_num_steps"] == 3
    assert Path(master.env["rubric"]["judge"]["base_url_file"]).is_absolute()
    assert master.env["rubric"]["group_size"] == master.grpo["num_generations_per_prompt"]


def test_trainer_signatures_name_what_the_wrapper_reads(nemo_rl_root):
    from nemo_rl.algorithms import grpo

    for trainer in (grpo.grpo_train, grpo.async_grpo_train):
        params = inspect.signature(trainer).parameters
        assert {"policy_generation", "task_to_env", "val_task_to_env", "logger"} <= set(params), trainer.__name__


def test_wrapped_trainer_publishes_the_policy_urls_and_reports_steps(nemo_rl_root, tmp_path):
    from nemo_rl.algorithms import grpo

    from rubricrl.train.nemo_rl_driver import wrap_trainer

    seen = {}

    def fake_grpo_train(*a, **k):  # NeMo RL's grpo_train signature, a body that only logs two steps
        bound = inspect.signature(grpo.grpo_train).bind(*a, **k).arguments
        seen["bound"] = sorted(bound)
        bound["logger"].log_metrics({"x": 1}, 1, prefix="train")

    fake_grpo_train.__signature__ = inspect.signature(grpo.grpo_train)

    class Gen:
        dp_openai_server_base_urls = ["http://n1:11001/v1", None]

    class Logger:
        def __init__(self):
            self.logged = []

        def log_metrics(self, metrics, step, prefix="", *a, **k):
            self.logged.append((prefix, step))

    logger = Logger()
    wrapped = wrap_trainer(fake_grpo_train, tmp_path / "urls.json")
    wrapped("policy", Gen(), "dl", None, "tok", "loss", {}, None, logger, "ckpt", {}, {})
    assert json.loads((tmp_path / "urls.json").read_text())["base_urls"] == ["http://n1:11001/v1"]
    assert logger.logged == [("train", 1)] and "logger" in seen["bound"]
