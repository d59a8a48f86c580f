"""Policy sampling for evaluation and offline filtering: prompts in, responses out. The one sampling module.

Two ways to sample, for two jobs:

* :class:`Sampler`: one chat call per response, with bounded concurrency, retries and timeouts, through the
  judge's backends (an OpenAI-compatible server such as ``vllm serve``, or an in-process transformers model).
  ``PolicyConfig`` (a YAML file, unknown keys are errors) configures it with the judge's keys, so the model
  that answers and the model that grades are configured the same way (``rubricrl generate``, rubric
  generation).
* :func:`sample_responses`: ``n`` responses per prompt from a local checkpoint, batched through
  ``model.generate`` (several times faster on CPU than one chat call at a time): the pipeline stages around
  training (offline filters, held-out evaluation). Rollouts during training are the engine's own.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rubricrl.config_io import load_yaml_model
from rubricrl.judge.backends import BackendError
from rubricrl.judge.backends.openai_http import OpenAIChatBackend
from rubricrl.judge.backends.transformers_local import TransformersChatBackend
from rubricrl.judge.config import BackoffConfig, SamplingConfig

log = logging.getLogger(__name__)
Message = dict[str, str]


class PolicyConfig(BaseModel):
    """How to sample responses from a policy.

    Attributes:
        backend: ``openai`` (OpenAI-compatible HTTP server) or ``transformers`` (in-process).
        model: served model name, or checkpoint path / alias for ``transformers``.
        sampling: decoding settings; defaults are the Rubicon model card's (temperature 0.6, top_p 0.95).
        system_prompt: optional system message prepended to every conversation.
        samples: responses per prompt (offline filtering uses k > 1).
        retries: extra attempts after a failed call; a prompt that still fails is reported, not written.
    """

    model_config = ConfigDict(extra="forbid")

    backend: Literal["openai", "transformers"] = "transformers"
    model: str = "smollm2-135m-instruct"
    base_url: str | None = None
    base_url_file: Path | None = None
    api_key_env: str | None = None
    sampling: SamplingConfig = Field(
        default_factory=lambda: SamplingConfig(temperature=0.6, top_p=0.95, top_k=None, max_tokens=256)
    )
    system_prompt: str | None = None
    samples: int = Field(default=1, ge=1, le=64)
    retries: int = Field(default=3, ge=0, le=20)
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)
    timeout_s: float = Field(default=120.0, gt=0)
    concurrency: int = Field(default=4, ge=1, le=1024)
    device: str = "cpu"
    extra_body: dict[str, Any] = Field(default_factory=dict)


def load_policy_config(
    path: str | Path, overrides: dict[str, Any] | None = None, overrides_flag: str = "override"
) -> PolicyConfig:
    """Load and validate a policy YAML (errors name the file, line and key, or the override's option)."""

    return load_yaml_model(path, PolicyConfig, overrides=overrides, overrides_flag=overrides_flag)


def build_backend(cfg: PolicyConfig) -> Any:
    """The chat backend ``cfg`` describes (the judge's backends, configured by the same keys)."""
    if cfg.backend == "openai":
        return OpenAIChatBackend.from_config(cfg)

    return TransformersChatBackend.from_config(cfg)


class Sampler:
    """Samples responses with bounded concurrency and retries.

    Args:
        cfg: the policy configuration.
        backend: a ChatBackend; built from ``cfg`` when omitted.
    """

    def __init__(self, cfg: PolicyConfig, backend: Any | None = None):
        self.cfg = cfg
        self.backend = backend if backend is not None else build_backend(cfg)
        self._sem: asyncio.Semaphore | None = None
        self.n_calls = 0
        self.n_failed = 0
        self.latency_s = 0.0

    def messages(self, conversation: list[Message]) -> list[Message]:
        if self.cfg.system_prompt and not (conversation and conversation[0].get("role") == "system"):
            return [{"role": "system", "content": self.cfg.system_prompt}, *conversation]
        return list(conversation)

    async def sample(self, conversation: list[Message], seed: int | None = None) -> tuple[str | None, str | None]:
        """One response, or ``(None, error)`` after the retry budget."""
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.cfg.concurrency)
        sampling = self.cfg.sampling.model_dump()
        if seed is not None:
            sampling["seed"] = seed
        error = None
        loop = asyncio.get_running_loop()
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                b = self.cfg.backoff
                await asyncio.sleep(min(b.max_s, b.initial_s * b.factor ** (attempt - 1)) * (0.5 + random.random() / 2))
            async with self._sem:
                t0 = loop.time()
                self.n_calls += 1
                try:
                    text = await asyncio.wait_for(
                        self.backend.complete(self.messages(conversation), **sampling), timeout=self.cfg.timeout_s
                    )
                    self.latency_s += loop.time() - t0
                    return text, None
                except (BackendError, asyncio.TimeoutError) as e:
                    error = f"{type(e).__name__}: {e}"
                    log.warning("policy call failed (attempt %d/%d): %s", attempt + 1, self.cfg.retries + 1, error)
        self.n_failed += 1
        return None, error

    async def aclose(self) -> None:
        close = getattr(self.backend, "aclose", None)
        if close is not None:
            await close()


def sample_responses(
    model_path: str,
    conversations: Sequence[list[Message]],
    *,
    n: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    batch_size: int,
    seed: int,
    chat_template_kwargs: dict[str, Any] | None = None,
    dtype: str = "float32",
    device: str = "cpu",
    advance: Callable[[int], None] | None = None,
) -> list[list[str]]:
    """``n`` responses for each conversation (``temperature == 0``: greedy, and ``n`` copies of it).

    Returns:
        one list of ``n`` response texts per conversation, in input order.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(model_path, padding_side="left")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype)).to(device)
    model.eval()
    texts = [
        tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True, **(chat_template_kwargs or {}))
        for c in conversations
    ]
    flat = [(i, t) for i, t in enumerate(texts) for _ in range(n if temperature > 0 else 1)]
    out: list[list[str]] = [[] for _ in texts]
    greedy = temperature <= 0
    for b in range(0, len(flat), batch_size):
        chunk = flat[b : b + batch_size]
        enc = tok([t for _, t in chunk], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.no_grad():
            gen = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=not greedy,
                temperature=temperature if not greedy else None,
                top_p=top_p if not greedy else None,
                top_k=None if not greedy else None,
                pad_token_id=tok.pad_token_id,
            )
        new = gen[:, enc["input_ids"].shape[1] :]
        for (i, _), ids in zip(chunk, new):
            out[i].append(tok.decode(ids, skip_special_tokens=True).strip())
        if advance is not None:
            advance(len(chunk))
    if greedy and n > 1:
        out = [o * n for o in out]
    return out
