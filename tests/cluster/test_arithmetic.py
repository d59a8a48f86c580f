"""Arithmetic and memory checks of the NeMo RL cluster configs: every committed config passes, and each
rule catches the mistake it exists for."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from rubricrl.cluster.arithmetic import Layout, check_file, check_nemo_config, failures
from rubricrl.cluster.memory import MODEL_SPECS, estimate_memory, model_spec
from rubricrl.errors import UserError

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(REPO.glob("replications/*/nemo_rl/*.yaml"))
RUBICON_8N = REPO / "replications/rubicon/nemo_rl/grpo-qwen3-30ba3b-8n8g-megatron-stage2.yaml"


def _load(path: Path = RUBICON_8N) -> dict:
    return yaml.safe_load(path.read_text())


def _failed(cfg: dict) -> set[str]:
    return {c.name for c in failures(check_nemo_config(cfg))}


def test_there_are_cluster_configs():
    assert RUBICON_8N in CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_cluster_config_passes(path):
    checks = check_file(path)
    assert not failures(checks), [f"{c.name}: {c.detail}" for c in failures(checks)]
    names = {c.name for c in checks}
    assert {"world = TP*PP*CP*DP", "rollouts % GBS", "GBS % DP"} <= names
    assert any(n.startswith("train memory") for n in names)


def _set(cfg: dict, dotted: str, value) -> dict:
    out = copy.deepcopy(cfg)
    cur = out
    *parts, last = dotted.split(".")
    for p in parts:
        cur = cur[p]
    cur[last] = value
    return out


M = "policy.megatron_cfg."
V = "policy.generation.vllm_cfg."


@pytest.mark.parametrize(
    "key,value,rule",
    [
        (M + "tensor_model_parallel_size", 3, "world = TP*PP*CP*DP"),
        (M + "tensor_model_parallel_size", 8, "KV heads % TP"),  # Qwen3-30B-A3B has 4 KV heads
        (M + "expert_model_parallel_size", 6, "experts % EP"),
        (M + "pipeline_model_parallel_size", 5, "layers % PP"),
        (M + "expert_tensor_parallel_size", 3, "world % (ETP*EP*PP)"),
        ("policy.make_sequence_length_divisible_by", 1, "sequence padding"),  # TP2 with sequence parallel
        (V + "tensor_parallel_size", 3, "heads % gTP"),
        ("policy.train_global_batch_size", 384, "rollouts % GBS"),
        ("policy.train_global_batch_size", 1024, "rollouts >= GBS"),
        ("grpo.num_prompts_per_step", 63, "rollouts % DP"),
        ("policy.max_total_sequence_length", 65536, "sequence length <= model context"),
    ],
)
def test_each_rule_catches_its_mistake(key, value, rule):
    assert rule in _failed(_set(_load(), key, value))


def test_generation_expert_parallel_rules():
    cfg = _set(_load(), V + "expert_parallel_size", 6)
    assert "gEP multiple of gTP" in _failed(cfg)
    cfg = _set(_set(_load(), V + "expert_parallel_size", 8), V + "async_engine", True)
    assert "gEP != gTP needs the sync engine" in _failed(cfg)
    ok = _set(_load(), V + "expert_parallel_size", 8)
    assert not _failed(ok)


def test_tp4_needs_equal_micro_and_logprob_batches_unless_on_policy():
    cfg = _set(_set(_load(), M + "tensor_model_parallel_size", 4), "policy.make_sequence_length_divisible_by", 4)
    cfg = _set(cfg, "policy.logprob_batch_size", 4)
    assert "TP>=4: MBS == logprob batch" in _failed(cfg)
    on_policy = _set(cfg, "loss_fn.force_on_policy_ratio", True)
    assert "TP>=4: MBS == logprob batch" not in _failed(on_policy)
    assert not _failed(on_policy)  # GBS 512 == 64 prompts x 8


def test_policy_judge_must_use_rollout_sampling_and_http_server():
    cfg = _set(_load(), "env.rubric.judge_is_policy", True)
    cfg = _set(cfg, "env.rubric.judge.sampling", {"temperature": 0.6, "top_p": 0.95, "top_k": 20})
    failed = _failed(cfg)
    assert {"policy judge: HTTP server on", "policy judge: sampling = rollout sampling"} <= failed
    cfg = _set(_set(cfg, V + "async_engine", True), V + "expose_http_server", True)
    cfg = _set(cfg, "env.rubric.judge.sampling", {"temperature": 0.6, "top_p": 0.95, "top_k": None})
    assert _failed(cfg) == set()  # 8n8g rollouts use temperature 0.6, top_p 0.95


def test_memory_check_fails_when_it_cannot_fit():
    big = _set(_load(), "policy.max_total_sequence_length", 40960)
    big = _set(big, "policy.train_micro_batch_size", 4)
    big = _set(big, "policy.logprob_batch_size", 4)
    assert any(n.startswith("train memory") for n in _failed(big))
    small_gpu = check_nemo_config(_load(), gpu_memory_gib=24)
    assert any(c.name.startswith("train memory") and not c.ok for c in small_gpu)


def test_missing_key_is_a_clear_error(tmp_path):
    cfg = _load()
    del cfg["policy"]["megatron_cfg"]["expert_model_parallel_size"]
    f = tmp_path / "x.yaml"
    f.write_text(yaml.safe_dump(cfg))
    with pytest.raises(UserError, match=r"x\.yaml.*expert_model_parallel_size"):
        check_file(f)


def test_model_dimensions_match_published_sizes():
    moe, dense = MODEL_SPECS["Qwen/Qwen3-30B-A3B"], MODEL_SPECS["Qwen/Qwen3-32B"]
    assert moe.total_params / 1e9 == pytest.approx(30.5, rel=0.01)  # model card: 30.5B
    assert moe.active_params / 1e9 == pytest.approx(3.3, rel=0.03)  # 3.3B activated
    assert dense.total_params / 1e9 == pytest.approx(32.8, rel=0.01)  # 32.8B
    assert "config.json" in moe.source and "config.json" in dense.source
    assert model_spec("/ckpt/Qwen/Qwen3-32B") is dense
    with pytest.raises(KeyError, match="known"):
        model_spec("meta/llama")


def test_memory_estimate_responds_to_the_layout():
    base = Layout.from_nemo_config(_load())
    spec = model_spec(base.model)
    m = estimate_memory(spec, base)
    more_ep = estimate_memory(spec, _replace(base, ep=16))
    assert more_ep.weights < m.weights and more_ep.optimizer > m.optimizer * 0.5  # experts halve, EDP halves
    more_nodes = estimate_memory(spec, _replace(base, world=128))
    assert more_nodes.optimizer < m.optimizer and more_nodes.weights == m.weights
    assert estimate_memory(spec, _replace(base, gen_tp=8)).kv_cache > m.kv_cache


def _replace(layout: Layout, **kw) -> Layout:
    import dataclasses

    return dataclasses.replace(layout, **kw)
