"""Generated NeMo RL configs: no drift from the experiment config, values traced to it, GPU-hour
estimates, and the ``rubricrl nemo-config`` command."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from rubricrl.cli import main
from rubricrl.cluster.arithmetic import check_nemo_config, failures
from rubricrl.cluster.nemo_rl import RECIPES, build_config
from rubricrl.cluster.throughput import PUBLISHED, estimate_gpu_hours
from rubricrl.config import compose_experiment
from rubricrl.errors import UserError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exp_rubicon():
    return compose_experiment("rubicon", ["scale=paper"], config_dir=REPO / "replications/rubicon/configs")


def test_values_come_from_the_experiment_config(exp_rubicon):
    r = RECIPES["grpo-qwen3-30ba3b-8n8g-megatron-stage2"]
    cfg = build_config(exp_rubicon, r)
    g = exp_rubicon.grpo
    assert cfg["policy"]["megatron_cfg"]["optimizer"]["lr"] == g.learning_rate
    assert cfg["grpo"]["num_generations_per_prompt"] == g.num_generations
    assert cfg["grpo"]["num_prompts_per_step"] * g.num_generations == g.per_device_train_batch_size
    assert cfg["grpo"]["max_num_steps"] == g.max_steps
    assert (cfg["loss_fn"]["ratio_clip_min"], cfg["loss_fn"]["ratio_clip_max"]) == (g.epsilon, g.epsilon_high)
    assert cfg["policy"]["generation"]["temperature"] == g.temperature
    assert cfg["env"]["rubric"]["judge"]["model"] == exp_rubicon.judge.model
    assert cfg["env"]["rubric"]["judge"]["base_url_file"] == str(exp_rubicon.judge.base_url_file)
    assert cfg["policy"]["model_name"].endswith("stage1_rl/final")  # stage 2 starts from stage 1
    s1 = build_config(exp_rubicon, RECIPES["grpo-qwen3-30ba3b-8n8g-megatron-stage1"])
    assert s1["env"]["rubric"]["judge"] == {"backend": "programmatic"}
    changed = exp_rubicon.model_copy(update={"grpo": g.model_copy(update={"learning_rate": 3e-6})})
    changed.sections = exp_rubicon.sections
    assert build_config(changed, r)["policy"]["megatron_cfg"]["optimizer"]["lr"] == 3e-6


def test_policy_judge_recipe_forces_rollout_sampling(exp_rubicon):
    recipe = dataclasses.replace(
        RECIPES["grpo-qwen3-30ba3b-4n8g-megatron-stage2"], name="t", judge="policy", async_engine=True
    )
    cfg = build_config(exp_rubicon, recipe)
    j = cfg["env"]["rubric"]["judge"]
    assert j["sampling"] == {
        "temperature": exp_rubicon.grpo.temperature,
        "top_p": exp_rubicon.grpo.top_p,
        "top_k": None,
    }
    assert j["model"] == exp_rubicon.policy.name and j["base_url_file"].endswith("policy.endpoints.json")
    assert cfg["rubricrl"]["deviations"] and "top_k" in cfg["rubricrl"]["deviations"][0]
    assert cfg["policy"]["generation"]["vllm_cfg"]["expose_http_server"] is True
    assert not failures(check_nemo_config(cfg))


def test_unsupported_settings_are_refused(exp_rubicon):
    bad = exp_rubicon.model_copy(
        update={"grpo": exp_rubicon.grpo.model_copy(update={"num_iterations": 2, "loss_type": "dr_grpo"})}
    )
    bad.sections = exp_rubicon.sections
    with pytest.raises(UserError, match="num_iterations") as e:
        build_config(bad, RECIPES["grpo-qwen3-30ba3b-8n8g-megatron-stage1"])
    assert "dr_grpo" in str(e.value)


def test_gpu_hours_follow_published_throughput():
    path = REPO / "replications/rubicon/nemo_rl/grpo-qwen3-30ba3b-8n8g-megatron-stage2.yaml"
    cfg = yaml.safe_load(path.read_text())
    hours, basis = estimate_gpu_hours(cfg)
    pub = PUBLISHED["Qwen/Qwen3-30B-A3B"]
    rollouts = cfg["grpo"]["num_prompts_per_step"] * cfg["grpo"]["num_generations_per_prompt"]
    mean = pub.mean_fraction * cfg["policy"]["max_total_sequence_length"]
    expected = cfg["grpo"]["max_num_steps"] * rollouts * mean / pub.tokens_per_s_per_gpu / 3600
    assert hours == pytest.approx(expected)  # GPUs cancel: tokens / per-GPU rate
    assert "1102" in basis and "performance-summary" in basis and "Assumptions" in basis
    double, _ = estimate_gpu_hours(path, steps=2 * cfg["grpo"]["max_num_steps"])
    assert double == pytest.approx(2 * hours)
    with_judge, basis_j = estimate_gpu_hours(cfg, judge_gpus=8)
    assert with_judge == pytest.approx(hours * (64 + 8) / 64) and "judge" in basis_j
    policy_judge = dict(cfg, env={"rubric": dict(cfg["env"]["rubric"], judge_is_policy=True)})
    assert estimate_gpu_hours(policy_judge)[0] > hours  # grader calls on the policy's engine cost tokens
    other = dict(cfg, rubricrl=dict(cfg["rubricrl"], base_model="meta/llama"))
    with pytest.raises(UserError, match="publishes no GRPO throughput"):
        estimate_gpu_hours(other)


def test_cli_check_and_estimate(capsys, tmp_path):
    assert main(["nemo-config", "check", "-q"]) == 0
    path = REPO / "replications/rubicon/nemo_rl/grpo-qwen3-30ba3b-4n8g-megatron-stage1.yaml"
    assert main(["nemo-config", "estimate", str(path)]) == 0
    assert "GPU-hours" in capsys.readouterr().out
    cfg = yaml.safe_load(path.read_text())
    cfg["policy"]["megatron_cfg"]["expert_model_parallel_size"] = 5
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    assert main(["nemo-config", "check", "-q", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: experts % EP" in err


def test_self_rewarding_32b_recipe_with_paper_b_hyperparameters():
    """Paper B's public 32B script values (REFERENCE.md) through the 4x8 TP4 PP2 recipe."""
    from rubricrl.config import ExperimentConfig

    exp = ExperimentConfig.model_validate(
        {
            "paper": "self_rewarding",
            "run": {"name": "sr", "scale": "paper", "engine": "nemo_rl"},
            "policy": {"name": "Qwen/Qwen3-32B", "dtype": "bfloat16", "device": "cuda"},
            "grpo": {
                "num_generations": 4,
                "per_device_train_batch_size": 32,
                "max_steps": 1250,
                "max_completion_length": 6144,
                "extra": {"steps_per_generation": 4},
            },
            "judge": {
                "backend": "openai",
                "model": "policy",
                "base_url_file": "x.json",
                "sampling": {"temperature": 0.6, "top_p": 0.95, "top_k": 20},
            },
        }
    )
    cfg = build_config(exp, RECIPES["grpo-qwen3-32b-4n8g-self-reward"])
    assert (cfg["grpo"]["num_prompts_per_step"], cfg["grpo"]["num_generations_per_prompt"]) == (32, 4)
    assert cfg["policy"]["train_global_batch_size"] == 32  # 4 optimizer steps per rollout batch
    mc = cfg["policy"]["megatron_cfg"]
    assert (mc["tensor_model_parallel_size"], mc["pipeline_model_parallel_size"]) == (4, 2)
    assert cfg["policy"]["max_total_sequence_length"] == 2048 + 6144
    assert cfg["env"]["rubric"]["judge_is_policy"] is True
    assert cfg["env"]["rubric"]["judge"]["sampling"] == {"temperature": 1.0, "top_p": 1.0, "top_k": None}
    checks = check_nemo_config(cfg)
    assert not failures(checks), [f"{c.name}: {c.detail}" for c in failures(checks)]
    hours, basis = estimate_gpu_hours(cfg)
    assert hours > 0 and "571" in basis and "grader calls" in basis
