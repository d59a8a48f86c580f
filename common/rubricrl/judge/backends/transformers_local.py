"""An in-process transformers chat model as a judge backend (CPU or one GPU).

The model is loaded on first use from a checkpoint directory or a known alias (resolved by
``rubricrl.models.resolve_model``, imported lazily). Generation runs in a worker thread under a lock
(one generation at a time: the model is not re-entrant and CPU cores are shared), so the event loop
stays free for other judge calls and timeouts.

:meth:`TransformersChatBackend.control_tokens` lists the tokenizer's special and added tokens (from its
files), which the judge defuses in graded content: ``apply_chat_template`` would otherwise tokenize a
``<|im_end|>`` written inside a response as the real token.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

from rubricrl.judge.backends import BackendError
from rubricrl.judge.interfaces import Message
from rubricrl.judge.sanitize import tokenizer_control_tokens
from rubricrl.models import resolve_model

log = logging.getLogger(__name__)


def resolve_checkpoint(name_or_path: str) -> Path:
    """A checkpoint directory for ``name_or_path`` (an existing directory, or a known model alias).

    Raises:
        UserError: not a directory and the alias cannot be resolved.
    """
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        return p
    return Path(resolve_model(name_or_path))


class TransformersChatBackend:
    """Chat completions from a local ``AutoModelForCausalLM``.

    Args:
        model: checkpoint directory or known alias (e.g. ``smollm2-135m-instruct``).
        device: torch device string.
        dtype: torch dtype name for loading (``float32`` on CPU).
    """

    def __init__(self, model: str, device: str = "cpu", dtype: str = "float32"):
        self.model = model
        self.device = device
        self.dtype = dtype
        self._lock = threading.Lock()
        self._lm: Any = None
        self._tok: Any = None

    @classmethod
    def from_config(cls, cfg: Any) -> TransformersChatBackend:
        """Build from a :class:`~rubricrl.judge.config.JudgeConfig` (the model loads on first call)."""
        return cls(cfg.model, device=cfg.device)

    def control_tokens(self) -> list[str]:
        """Special and added tokens of the model's tokenizer (resolving the checkpoint, as the first call would)."""

        return tokenizer_control_tokens(resolve_checkpoint(self.model))

    def load(self) -> None:
        """Load tokenizer and model now (otherwise on the first call). Thread-safe, idempotent."""
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> None:
        if self._lm is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_checkpoint(self.model)
        log.info("loading judge model %s from %s on %s", self.model, path, self.device)
        self._tok = AutoTokenizer.from_pretrained(path)
        lm = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, self.dtype))
        self._lm = lm.to(self.device).eval()

    def _generate(self, messages: list[Message], sampling: dict[str, Any]) -> str:
        import torch

        with self._lock:
            self._load_locked()
            tok, lm = self._tok, self._lm
            enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
            enc = {k: v.to(self.device) for k, v in enc.items()}
            temperature = float(sampling.get("temperature") or 0.0)
            gen: dict[str, Any] = {"max_new_tokens": int(sampling.get("max_tokens") or 512)}
            if temperature > 0:
                gen.update(do_sample=True, temperature=temperature)
                if sampling.get("top_p") is not None:
                    gen["top_p"] = float(sampling["top_p"])
                if sampling.get("top_k") is not None:
                    gen["top_k"] = int(sampling["top_k"])
            else:
                gen.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if sampling.get("seed") is not None:
                torch.manual_seed(int(sampling["seed"]))
            if tok.pad_token_id is None:
                gen["pad_token_id"] = tok.eos_token_id
            with torch.inference_mode():
                out = lm.generate(**enc, **gen)
            new = out[0, enc["input_ids"].shape[1] :]
            return tok.decode(new, skip_special_tokens=True)

    async def complete(self, messages: list[Message], **sampling: Any) -> str:
        """Generate a reply in a worker thread.

        Raises:
            BackendError: generation failed with a runtime error (e.g. out of memory).
        """
        try:
            return await asyncio.to_thread(self._generate, messages, sampling)
        except (RuntimeError, ValueError) as e:
            raise BackendError(f"local generation failed: {type(e).__name__}: {e}") from e

    async def aclose(self) -> None:
        """Drop the model (frees memory)."""
        with self._lock:
            self._lm = None
            self._tok = None
