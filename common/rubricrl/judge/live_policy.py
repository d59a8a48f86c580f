"""The policy as its own grader, in process: constrained verdict decoding on the live model object.

Paper B grades every rollout with the policy being trained, with the weights of that step. On a cluster
the policy's own vLLM engine serves the grader behind its OpenAI-compatible endpoint (``LLMJudge`` over
``OpenAIChatBackend``). In a local TRL run on CPU there is no engine to sync weights into, so this module
grades on the trainer's model object itself: whatever weights it holds when called are the grader.

A 135M model almost never writes the verdict JSON unaided, so the verdict is decoded under a JSON
constraint with the verdict placed first:

1. the grader prompt is exactly what the HTTP judge sends: the same template (``healthbench`` by
   default, rendered by :mod:`rubricrl.judge.prompts`) as one user message, through the model's chat
   template with the generation prompt;
2. the assistant turn is prefilled with the JSON prefix of the verdict, ``{"criteria_met":``;
3. the only tokens the JSON grammar allows next that decide the verdict are those consistent with
   ``true`` or with ``false`` (optional leading whitespace, a non-empty prefix of the literal, or the
   literal followed by ``,`` / ``}``). Their logits are divided by the grader temperature, filtered by
   top-k / top-p among the allowed tokens (vLLM's order: grammar mask, temperature, top-k, top-p), and
   the verdict is sampled from the group masses, or taken as the argmax at temperature 0.

Deviation from the paper (documented in ``replications/self_rewarding/README.md``): the paper's grader
writes ``{"explanation": ..., "criteria_met": ...}`` with the explanation first; here the verdict comes
first and no explanation is generated (``explanation`` records the probability instead). At tiny scale
the explanation costs most of the decoding time and a 135M model's explanation carries no signal.

Efficiency: all (response, criterion) pairs of a step are graded under ``torch.no_grad`` with the model
in eval mode (restored afterwards). For each response the criteria's prompts share a long token prefix
(template head, conversation, response); it runs once, and the per-criterion suffixes run in left-padded
batches on copies of its KV cache, keeping only the last position's logits.

A teacher grading a share of the samples beside this grader is a judge wrapper of the scorer
(:class:`rubricrl.reward.scorer.TeacherRoutingJudge`, with :func:`rubricrl.reward.scorer.agreement`).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from rubricrl.judge.interfaces import GradingRequest, Verdict
from rubricrl.judge.llm import JudgeStats
from rubricrl.judge.programmatic import ProgrammaticJudge
from rubricrl.judge.prompts import TemplateSet, new_tag, prompt_values
from rubricrl.types import Criterion

log = logging.getLogger(__name__)

VERDICT_PREFIX = '{"criteria_met":'
JUDGE_NAME = "live-policy"
_AFTER_LITERAL = re.compile(r"\s*[,}]\s*")


def continuation_side(text: str) -> bool | None:
    """Which verdict a token's text commits to after the prefix: True, False, or None (neither / both).

    Allowed: optional whitespace, then a non-empty prefix of ``true`` / ``false``, or the whole literal
    followed by ``,`` or ``}`` (and whitespace).
    """
    s = text.lstrip()
    if not s:
        return None
    for literal, side in (("true", True), ("false", False)):
        if literal.startswith(s):
            return side
        if s.startswith(literal) and _AFTER_LITERAL.fullmatch(s[len(literal) :]):
            return side
    return None


_GROUPS: dict[tuple[str, int], tuple[list[int], list[int]]] = {}


def verdict_token_groups(tokenizer: Any) -> tuple[list[int], list[int]]:
    """Token ids whose text commits to ``true`` and to ``false`` (special tokens excluded).

    Cached per tokenizer (name and size): the scan decodes every vocabulary entry once.
    """
    key = (str(getattr(tokenizer, "name_or_path", "")), len(tokenizer))
    if key[0] and key in _GROUPS:
        return _GROUPS[key]
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    true_ids: list[int] = []
    false_ids: list[int] = []
    for i in range(len(tokenizer)):
        if i in special:
            continue
        side = continuation_side(tokenizer.decode([i]))
        if side is True:
            true_ids.append(i)
        elif side is False:
            false_ids.append(i)
    if not true_ids or not false_ids:
        raise ValueError("the tokenizer has no token that can start 'true' or 'false'")
    _GROUPS[key] = (true_ids, false_ids)
    return true_ids, false_ids


def grader_user_message(template_set: TemplateSet, request: GradingRequest, criterion: Criterion, tag: str) -> str:
    """The user message the HTTP judge sends for ``criterion`` (binary mode), for delimiter ``tag``."""
    template = template_set.for_criterion(criterion)
    return template.render(prompt_values(request.conversation, request.response, [criterion], tag, "binary"))


def restricted_p_true(
    logits: Any, true_ids: Any, false_ids: Any, temperature: float, top_k: int | None = None, top_p: float | None = None
) -> Any:
    """P(verdict = true) per row, from next-token logits restricted to the verdict tokens.

    Args:
        logits: ``[n, vocab]`` next-token logits after the verdict prefix.
        true_ids, false_ids: 1-D long tensors of the two token groups.
        temperature: grader temperature; ``0`` gives 1.0 / 0.0 by the argmax allowed token.
        top_k, top_p: applied among the allowed tokens after temperature (None: off).

    Returns:
        ``[n]`` float tensor.
    """
    import torch

    allowed = torch.cat([true_ids, false_ids])
    is_true = torch.zeros(allowed.numel(), dtype=torch.bool, device=logits.device)
    is_true[: true_ids.numel()] = True
    sub = logits.float().index_select(-1, allowed)
    if temperature <= 0:
        return is_true[sub.argmax(-1)].float()
    order = torch.argsort(sub / temperature, dim=-1, descending=True)
    probs = torch.softmax(torch.gather(sub / temperature, -1, order), dim=-1)
    keep = torch.ones_like(probs, dtype=torch.bool)
    if top_k is not None and top_k > 0:
        keep[:, top_k:] = False
    if top_p is not None and top_p < 1.0:
        before = torch.cumsum(probs, dim=-1) - probs  # mass of the better tokens
        keep &= before < top_p  # smallest set reaching top_p (always keeps the best token)
    probs = probs * keep
    probs = probs / probs.sum(-1, keepdim=True)
    return (probs * is_true[order].float()).sum(-1)


class LivePolicyGrader:
    """Grades with a live ``transformers`` model object by constrained verdict decoding.

    Usable as a :class:`~rubricrl.judge.interfaces.Judge` (``await grade(request)``) and, more
    efficiently, for all responses of a step at once (:meth:`grade_batch`).

    Args:
        model: a causal LM (the trainer's policy: the same object, so its current weights grade).
        tokenizer: its tokenizer (with a chat template).
        template: judge template spec, as ``JudgeConfig.template`` (default: our ``healthbench``).
        temperature: grader temperature (Paper B: 0.6; an earlier run 1.0); 0 = argmax.
        top_p, top_k: grader top-p / top-k (Paper B: 0.95 / 20), among the allowed verdict tokens.
        seed: seed of the sampling generator (verdicts are reproducible for equal weights and inputs).
        max_prompt_tokens: longer grader prompts are ungraded (counted), never truncated.
        batch_size: criterion suffixes per forward pass.
        chat_template_kwargs: passed to ``apply_chat_template`` (e.g. ``{"enable_thinking": false}``).
        name: judge identifier in verdicts.
    """

    mode = "binary"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        template: str = "healthbench",
        temperature: float = 0.6,
        top_p: float | None = 0.95,
        top_k: int | None = 20,
        seed: int = 0,
        max_prompt_tokens: int = 4096,
        batch_size: int = 16,
        chat_template_kwargs: dict[str, Any] | None = None,
        name: str = JUDGE_NAME,
    ):
        import torch

        self.model = model
        self.tokenizer = tokenizer
        self.templates = TemplateSet("binary", template)
        self.temperature = float(temperature)
        self.top_p = top_p
        self.top_k = top_k
        self.max_prompt_tokens = max_prompt_tokens
        self.batch_size = max(1, int(batch_size))
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.name = name
        self.stats = JudgeStats()
        self.programmatic = ProgrammaticJudge()
        true_ids, false_ids = verdict_token_groups(tokenizer)
        self._true = torch.tensor(true_ids, dtype=torch.long)
        self._false = torch.tensor(false_ids, dtype=torch.long)
        self._gen = torch.Generator().manual_seed(int(seed))
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ prompts

    def grader_text(self, request: GradingRequest, criterion: Criterion, tag: str) -> str:
        """Chat-templated grader prompt with the assistant turn prefilled by :data:`VERDICT_PREFIX`."""
        user = grader_user_message(self.templates, request, criterion, tag)
        text = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True, **self.chat_template_kwargs
        )
        return text + VERDICT_PREFIX

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # ------------------------------------------------------------------ forward passes

    def _device(self) -> Any:
        return next(self.model.parameters()).device

    def _p_true_shared(self, seqs: list[list[int]]) -> list[float]:
        """P(true) for token sequences of one response (shared prefix run once)."""
        import torch

        device = self._device()
        shortest = min(len(s) for s in seqs)
        n_shared = 0
        while n_shared < shortest - 1 and all(s[n_shared] == seqs[0][n_shared] for s in seqs):
            n_shared += 1
        out: list[float] = []
        prefix = torch.tensor([seqs[0][:n_shared]], dtype=torch.long, device=device)
        cache = None
        if n_shared:
            cache = self.model(input_ids=prefix, use_cache=True, logits_to_keep=1).past_key_values
        for start in range(0, len(seqs), self.batch_size):
            chunk = [s[n_shared:] for s in seqs[start : start + self.batch_size]]
            width = max(len(s) for s in chunk)
            ids = torch.full((len(chunk), width), self._pad_id(), dtype=torch.long, device=device)
            suffix_mask = torch.zeros((len(chunk), width), dtype=torch.long, device=device)
            for r, s in enumerate(chunk):  # left padding: every row ends at the last column
                ids[r, width - len(s) :] = torch.tensor(s, dtype=torch.long)
                suffix_mask[r, width - len(s) :] = 1
            mask = torch.cat([torch.ones((len(chunk), n_shared), dtype=torch.long, device=device), suffix_mask], 1)
            positions = (n_shared + suffix_mask.cumsum(-1) - 1).clamp(min=0)
            kwargs: dict[str, Any] = {
                "input_ids": ids,
                "attention_mask": mask,
                "position_ids": positions,
                "logits_to_keep": 1,
            }
            if cache is not None:
                past = copy.deepcopy(cache)
                past.batch_repeat_interleave(len(chunk))
                kwargs.update(past_key_values=past, use_cache=True)
            logits = self.model(**kwargs).logits[:, -1, :]
            p = restricted_p_true(
                logits, self._true.to(device), self._false.to(device), self.temperature, self.top_k, self.top_p
            )
            out.extend(float(x) for x in p.cpu())
        return out

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else (self.tokenizer.eos_token_id or 0))

    def _decide(self, p_true: float) -> bool:
        import torch

        if self.temperature <= 0:
            return p_true >= 0.5
        return bool(torch.rand((), generator=self._gen).item() < p_true)

    # ------------------------------------------------------------------ grading

    def grade_batch(self, requests: Sequence[GradingRequest]) -> list[list[Verdict]]:
        """Verdicts for every request (one list per request, criteria in order).

        Programmatic criteria go to their verifiers; binary ``llm`` criteria are decided by the live
        model; tiered criteria and over-long prompts are ungraded (with the reason, and counted).
        """
        import torch

        with self._lock:
            was_training = bool(getattr(self.model, "training", False))
            self.model.eval()
            try:
                with torch.no_grad():
                    return [self._grade_one(r) for r in requests]
            finally:
                self.model.train(was_training)

    def _grade_one(self, request: GradingRequest) -> list[Verdict]:
        out: dict[int, Verdict] = {}
        todo: list[tuple[int, Criterion, list[int]]] = []
        tag = new_tag()  # one delimiter nonce per response (shared by its criteria: prefix reuse)
        for i, c in enumerate(request.criteria):
            if c.kind == "programmatic":
                out[i] = self.programmatic.grade_criterion(request.response, c)
            elif not c.binary:
                out[i] = self._ungraded(c, "live-policy grader decides binary criteria only (this one has tiers)")
            else:
                ids = self._encode(self.grader_text(request, c, tag))
                if len(ids) > self.max_prompt_tokens:
                    out[i] = self._ungraded(
                        c, f"grader prompt has {len(ids)} tokens > max_prompt_tokens {self.max_prompt_tokens}"
                    )
                else:
                    todo.append((i, c, ids))
        if todo:
            t0 = time.perf_counter()
            try:
                probs = self._p_true_shared([ids for _, _, ids in todo])
            except RuntimeError as e:  # e.g. out of memory: ungraded, counted, never False
                log.warning("live-policy grading failed for %d criteria: %s", len(todo), e)
                for i, c, _ in todo:
                    out[i] = self._ungraded(c, f"forward pass failed: {type(e).__name__}: {e}")
                probs = []
            dt = time.perf_counter() - t0
            self.stats.calls += len(todo)
            self.stats.latency_sum_s += dt
            for (i, c, _), p in zip(todo, probs):
                self.stats.graded += 1
                out[i] = Verdict(
                    c.id,
                    met=self._decide(p),
                    judge=self.name,
                    attempts=1,
                    explanation=f"constrained verdict p_true={p:.4f} (T={self.temperature:g})",
                    latency_s=dt / len(todo),
                )
        return [out[i] for i in range(len(request.criteria))]

    def _ungraded(self, c: Criterion, why: str) -> Verdict:
        self.stats.ungraded += 1
        return Verdict(c.id, judge=self.name, error=why)

    async def grade(self, request: GradingRequest) -> list[Verdict]:
        """One verdict per criterion of ``request``, in order (runs in a worker thread)."""
        return (await asyncio.to_thread(self.grade_batch, [request]))[0]

    async def aclose(self) -> None:
        """Nothing to release (the model belongs to the caller)."""


# --------------------------------------------------------------------------- frozen graders


def load_frozen_grader(
    path: str, spec: Any, name: str, device: str = "cpu", dtype: str = "float32"
) -> LivePolicyGrader:
    """A :class:`LivePolicyGrader` over a frozen copy of the model at ``path``: loaded in ``dtype`` on
    ``device``, eval mode, no gradients. ``spec`` gives the grading settings (``template``,
    ``temperature``, ``top_p``, ``top_k``, ``max_prompt_tokens``, ``batch_size``, ``chat_template_kwargs``):
    a fixed grader of self-rewarding, or the drift monitor's constrained judge."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LivePolicyGrader(
        model,
        tok,
        template=spec.template,
        temperature=spec.temperature,
        top_p=spec.top_p,
        top_k=spec.top_k,
        max_prompt_tokens=spec.max_prompt_tokens,
        batch_size=spec.batch_size,
        chat_template_kwargs=spec.chat_template_kwargs,
        name=name,
    )
