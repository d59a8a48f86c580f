"""Batched sampling from a local checkpoint with transformers (offline filter and held-out evaluation).

Rollouts during training are the engine's own (TRL's generation); this is for the stages around it,
where batching many prompts through ``model.generate`` is several times faster on CPU than one chat
call at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)
Message = dict[str, str]


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
