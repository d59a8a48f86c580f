"""LLMJudge: grade criteria with a chat model, with bounded concurrency, timeouts and retries.

Modes:

* ``binary`` / ``tiered``: one call per criterion (criteria without tiers get the binary template,
  criteria with tiers the tiered one);
* ``batch``: all criteria of a response in one call, retried until a JSON list comes back; the criteria
  that list did not cover (missing, duplicated, ill-typed) fall back to per-criterion calls (the
  binary / tiered templates);
* ``holistic``: one overall score per response, mapped onto every criterion's own range.

Prefix-friendly grading: one delimiter nonce is drawn per graded response (after it exists, so it is
still unforgeable) and shared by all its criteria, their retries and the batch fallback calls. The
built-in templates put everything that does not depend on the criterion first, and a response's
criteria are dispatched together, so a prefix-caching server (``rubricrl serve``) computes the
instructions, the conversation and the response once per response. Identical requests in flight at the
same time (the same response twice in a GRPO group, with the same rubric) are graded once: the copies
wait for the first and get the same verdicts (``attempts=0``, counted in ``JudgeStats.deduped``).

A call is retried after a transport error, a timeout, or an answer that cannot be parsed, up to
``retries`` extra attempts. After that the verdict is ungraded (``met=None, score=None``, ``error``
says why, ``attempts`` counts the calls), logged and counted in :class:`JudgeStats`; it is never
turned into ``False``.

Retries never add load to a slow server: a call holds its concurrency slot from its first attempt to
its last, backoff included, so at most ``concurrency`` calls are in flight or waiting to retry. A
server may still be working on a request the judge gave up on (timed out), so that slot is handed no
other request until a backoff has passed: before the retry, and after a last attempt that timed out
(before the slot goes to the next call). The backoff is exponential with jitter (each wait drawn
uniformly from half to all of ``min(max_s, initial_s * factor ** (retry - 1))``), so calls that timed
out together do not come back together.

Graded content (:mod:`rubricrl.judge.sanitize`): each request's conversation and response are sanitised
once, before any prompt is rendered (look-alikes folded, invisible characters made visible, chat control
tokens defused, the judge tokenizer's own included when the backend can list them), and the response is
capped at ``max_response_chars`` with the cut marked (``JudgeStats.truncated`` counts such requests). If
the server still rejects a prompt as longer than its context (HTTP 400 naming the context length), the
next attempt cuts the response to half of what was sent (``JudgeStats.context_recuts``), so a padded
response is graded on what fits instead of coming back ungraded. Verdict-cache and in-flight keys are
taken on the content as the judge sees it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rubricrl.judge.backends import BackendError
from rubricrl.judge.cache import request_key
from rubricrl.judge.interfaces import ChatBackend, GradingMode, GradingRequest, Verdict
from rubricrl.judge.parsing import Parsed, ParseError, parse_batch, parse_binary, parse_score
from rubricrl.judge.prompts import TemplateSet, holistic_scale, new_tag, prompt_values, score_range
from rubricrl.judge.sanitize import DEFAULT_MAX_RESPONSE_CHARS, MIN_RESPONSE_CHARS, ContentGuard
from rubricrl.judge.schemas import batch_schema, binary_schema, explanation_chars, response_format, score_schema
from rubricrl.types import Criterion

log = logging.getLogger(__name__)

#: What an OpenAI-compatible server says when a prompt does not fit its context (vLLM, OpenAI, SGLang).
CONTEXT_ERROR = re.compile(
    r"maximum context length|context length|context_length_exceeded|max_model_len|maximum model length|"
    r"longer than the maximum|prompt is too long|too many tokens|reduce the length",
    re.IGNORECASE,
)


@dataclass
class JudgeStats:
    """Counters a caller (training loop, CLI) reads to log judge health.

    Attributes:
        calls: model calls made (every attempt counts).
        retries: attempts after the first, per criterion or request.
        transport_errors: calls that failed in transport or timed out.
        timeouts: the part of ``transport_errors`` that timed out (``timeout_s`` or the HTTP client's).
        parse_failures: answers that could not be parsed.
        graded: verdicts produced by a model call.
        ungraded: verdicts given up on after the retry budget (or not servable, for replay).
        cache_hits: verdicts served from a verdict cache.
        batch_fallbacks: batch-mode criteria graded by a per-criterion call (the list answer left them out).
        deduped: verdicts copied from an identical request graded at the same time (no call of their own;
            an ungraded copy also counts in ``ungraded``).
        latency_sum_s: total wall time spent in model calls (judge compute, summed over calls).
        queue_wait_s: total time calls waited for a concurrency slot (judge queue wait, summed over calls).
        truncated: graded requests (a response against one rubric) whose response was cut to
            ``max_response_chars`` before grading.
        context_recuts: attempts retried with the response cut to half after the server rejected the
            prompt as longer than its context.
    """

    calls: int = 0
    retries: int = 0
    transport_errors: int = 0
    timeouts: int = 0
    parse_failures: int = 0
    graded: int = 0
    ungraded: int = 0
    cache_hits: int = 0
    deduped: int = 0
    batch_fallbacks: int = 0
    latency_sum_s: float = 0.0
    queue_wait_s: float = 0.0
    truncated: int = 0
    context_recuts: int = 0

    @property
    def mean_latency_s(self) -> float:
        """Mean wall time per model call (0 when no call was made)."""
        return self.latency_sum_s / self.calls if self.calls else 0.0

    def as_dict(self) -> dict[str, float]:
        """All counters plus ``mean_latency_s``, for logging."""
        d: dict[str, float] = asdict(self)
        d["mean_latency_s"] = self.mean_latency_s
        return d

    def add(self, other: JudgeStats) -> JudgeStats:
        """A new stats object with the counters of both."""
        a, b = asdict(self), asdict(other)
        return JudgeStats(**{k: a[k] + b[k] for k in a})

    def reset(self) -> None:
        """Zero all counters (e.g. after logging them for a training step)."""
        for k, v in asdict(JudgeStats()).items():
            setattr(self, k, v)


@dataclass
class _Outcome:
    result: Any
    attempts: int
    error: str | None
    latency_s: float


@dataclass
class _Content:
    """One request's conversation and response as the judge sees them (sanitised; response capped).

    ``view(level)``: the response after ``level`` context-length re-cuts (level 0: the configured cap;
    each further level half the length of the one before, never under ``MIN_RESPONSE_CHARS``).
    """

    guard: ContentGuard
    conversation: list[dict[str, str]]
    raw_response: str
    views: list[tuple[str, int]] = field(default_factory=list)

    def view(self, level: int = 0) -> str:
        while len(self.views) <= level:
            if not self.views:
                self.views.append(self.guard.response(self.raw_response))
                continue
            last = self.views[-1][0]
            cap = max(MIN_RESPONSE_CHARS, len(last) // 2)
            self.views.append(self.guard.response(self.raw_response, cap) if cap < len(last) else self.views[-1])
        return self.views[level][0]

    @property
    def cut(self) -> bool:
        """The level-0 view is cut."""
        self.view(0)
        return self.views[0][1] > 0

    def request(self, request: GradingRequest, level: int = 0) -> GradingRequest:
        return dataclasses.replace(request, conversation=self.conversation, response=self.view(level))


class LLMJudge:
    """A judge over a :class:`~rubricrl.judge.interfaces.ChatBackend`.

    Args:
        backend: the chat model.
        mode: grading mode.
        template: template spec (built-in name, ``official:healthbench`` or a path); None for the
            mode's built-in default.
        sampling: keyword arguments for ``backend.complete`` (temperature, top_p, top_k, max_tokens, seed).
        retries: extra attempts after a failed call or an unparsable answer.
        backoff: ``(initial_s, max_s, factor)`` of the exponential backoff between attempts (jittered, see
            the module docstring).
        timeout_s: per-call timeout.
        concurrency: maximum calls in flight, retries and their backoff included.
        name: judge identifier in verdicts and cache keys (default: the backend's model name).
        structured_output: send the mode's JSON schema as ``response_format`` (see ``judge.schemas``).
        sanitize: sanitise graded content (:mod:`rubricrl.judge.sanitize`); off only to measure attacks.
        max_response_chars: response cap in characters (None: no cap, and no re-cut on a context error).
        control_tokens: extra control-token strings to defuse; None asks the backend
            (``backend.control_tokens()``, the local tokenizer's special and added tokens) on first use.
    """

    def __init__(
        self,
        backend: ChatBackend,
        *,
        mode: GradingMode = "binary",
        template: str | None = None,
        sampling: dict[str, Any] | None = None,
        retries: int = 3,
        backoff: tuple[float, float, float] = (0.5, 8.0, 2.0),
        timeout_s: float = 60.0,
        concurrency: int = 8,
        name: str | None = None,
        structured_output: bool = False,
        sanitize: bool = True,
        max_response_chars: int | None = DEFAULT_MAX_RESPONSE_CHARS,
        control_tokens: Sequence[str] | None = None,
    ):
        self.backend = backend
        self.structured_output = structured_output
        self.sanitize = sanitize
        if max_response_chars is not None and max_response_chars < MIN_RESPONSE_CHARS:
            raise ValueError(
                f"max_response_chars must be at least {MIN_RESPONSE_CHARS} (or None), got {max_response_chars}"
            )
        self.max_response_chars = max_response_chars
        self._control_tokens = tuple(control_tokens) if control_tokens is not None else None
        self._guard: ContentGuard | None = None
        self._contents: dict[tuple[Any, ...], _Content] = {}
        self.mode: GradingMode = mode
        self.templates = TemplateSet(mode, template)
        self.sampling = dict(sampling or {})
        self._chars = explanation_chars(self.sampling.get("max_tokens"))
        self.retries = retries
        self.backoff = backoff
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self.name = name or backend.model
        self.stats = JudgeStats()
        self._sem: asyncio.Semaphore | None = None
        self._sem_loop: asyncio.AbstractEventLoop | None = None
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._inflight_loop: asyncio.AbstractEventLoop | None = None
        self._rng = random.Random()
        self._fallback: TemplateSet | None = None

    @classmethod
    def from_config(cls, cfg: Any, backend: ChatBackend) -> LLMJudge:
        """Build from a :class:`~rubricrl.judge.config.JudgeConfig` and a backend."""
        explicit = "template" in cfg.model_fields_set
        return cls(
            backend,
            mode=cfg.mode,
            template=cfg.template if explicit else None,
            sampling=cfg.sampling.model_dump(),
            retries=cfg.retries,
            backoff=(cfg.backoff.initial_s, cfg.backoff.max_s, cfg.backoff.factor),
            timeout_s=cfg.timeout_s,
            concurrency=cfg.concurrency,
            structured_output=cfg.structured_output,
            sanitize=cfg.sanitize,
            max_response_chars=cfg.max_response_chars,
        )

    # ------------------------------------------------------------------ plumbing

    @property
    def guard(self) -> ContentGuard:
        """The content guard, built on first use (it asks the backend for its tokenizer's control tokens)."""
        if self._guard is None:
            tokens = self._control_tokens
            if tokens is None:
                tokens = ()
                listing = getattr(self.backend, "control_tokens", None)
                if self.sanitize and listing is not None:
                    try:
                        tokens = tuple(listing())
                    except Exception as e:  # noqa: BLE001  (the generic list still applies)
                        log.warning(
                            "judge %s: cannot list the tokenizer's control tokens (%s); "
                            "defusing the built-in list only",
                            self.name,
                            e,
                        )
                if tokens:
                    log.info(
                        "judge %s: defusing %d control tokens of its tokenizer in graded content",
                        self.name,
                        len(tokens),
                    )
            self._guard = ContentGuard(self.sanitize, self.max_response_chars, tokens)
        return self._guard

    def content(self, request: GradingRequest) -> _Content:
        """``request``'s content as this judge sees it (memoised: a response's criteria share one copy)."""
        key = (
            request.response,
            tuple((str(t.get("role", "")), str(t.get("content", ""))) for t in request.conversation),
        )
        got = self._contents.get(key)
        if got is None:
            if len(self._contents) >= 512:
                self._contents.clear()
            guard = self.guard
            got = self._contents[key] = _Content(guard, guard.conversation(request.conversation), request.response)
        return got

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:  # asyncio primitives are loop-bound
            self._sem, self._sem_loop = asyncio.Semaphore(self.concurrency), loop
        return self._sem

    def _inflight_map(self) -> dict[str, asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        if self._inflight_loop is not loop:
            self._inflight, self._inflight_loop = {}, loop
        return self._inflight

    async def _shared(self, key: str, ids: list[str], run: Callable[[], Any]) -> list[Verdict]:
        """``await run()``, unless an identical call (same ``key``) is in flight: then copies of its verdicts.

        ``key`` names the judgement: criterion ids plus their verdict-cache keys (judge, template, mode,
        conversation, response, criterion content). ``ids``: the criterion ids the verdicts are for.
        """
        inflight = self._inflight_map()
        first = inflight.get(key)
        if first is not None:
            verdicts = await asyncio.shield(first)
            copies = [
                dataclasses.replace(v, criterion_id=cid, attempts=0, latency_s=0.0) for cid, v in zip(ids, verdicts)
            ]
            self.stats.deduped += len(copies)
            self.stats.ungraded += sum(v.ungraded for v in copies)
            return copies
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        inflight[key] = fut
        try:
            verdicts = await run()
            fut.set_result(verdicts)
            return verdicts
        except BaseException as e:
            fut.set_exception(e if isinstance(e, Exception) else RuntimeError(f"identical judge call ended: {e!r}"))
            fut.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            if inflight.get(key) is fut:
                del inflight[key]

    def _delay(self, retry: int) -> float:
        """Wait before retry number ``retry`` (1-based): exponential, capped, with "equal jitter"."""
        initial, max_s, factor = self.backoff
        cap = min(max_s, initial * factor ** (retry - 1))
        return cap * (0.5 + 0.5 * self._rng.random())

    def template_hash(self, criterion: Criterion) -> str:
        """Hash of the template that grades ``criterion`` (part of its cache key)."""
        return self.templates.for_criterion(criterion).hash

    async def _attempts(
        self,
        make_prompt: Callable[[str, int], str],
        parse: Callable[[str, str], Any],
        what: str,
        schema: Callable[[], dict[str, Any]] | None,
        tag: str,
    ) -> _Outcome:
        """Call the model until ``parse`` succeeds or the retry budget is spent.

        Every attempt uses the response's delimiter ``tag``. The concurrency slot is held across every
        attempt and backoff of this call (see the module docstring); the wait for it is ``queue_wait_s``.
        ``make_prompt(tag, level)`` renders the prompt with the response after ``level`` re-cuts; the
        level goes up when the server rejects a prompt as longer than its context.
        """
        t0 = time.perf_counter()
        async with self._semaphore():
            self.stats.queue_wait_s += time.perf_counter() - t0
            return await self._attempts_in_slot(make_prompt, parse, what, schema, tag)

    async def _attempts_in_slot(
        self,
        make_prompt: Callable[[str, int], str],
        parse: Callable[[str, str], Any],
        what: str,
        schema: Callable[[], dict[str, Any]] | None,
        tag: str,
    ) -> _Outcome:
        error: str | None = None
        latency = 0.0
        attempt = 0
        timed_out = False
        level = 0
        sampling = dict(self.sampling)
        if self.structured_output and schema is not None:
            sampling["response_format"] = response_format(schema())
        for attempt in range(1, self.retries + 2):
            if attempt > 1:
                self.stats.retries += 1
                await asyncio.sleep(self._delay(attempt - 1))
            messages = [{"role": "user", "content": make_prompt(tag, level)}]
            t0 = time.perf_counter()
            timed_out = False
            try:
                text = await asyncio.wait_for(self.backend.complete(messages, **sampling), self.timeout_s)
            except (BackendError, asyncio.TimeoutError, TimeoutError) as e:
                text = None
                error = f"transport: {e}" if str(e) else f"transport: timeout after {self.timeout_s}s"
                self.stats.transport_errors += 1
                timed_out = not isinstance(e, BackendError) or getattr(e, "timeout", False)
                self.stats.timeouts += timed_out
                if self.max_response_chars is not None and _context_error(e):
                    level += 1
                    self.stats.context_recuts += 1
            finally:
                dt = time.perf_counter() - t0
                latency += dt
                self.stats.calls += 1
                self.stats.latency_sum_s += dt
            if text is None:
                log.info("judge %s: %s (attempt %d/%d)", self.name, error, attempt, self.retries + 1)
                continue
            try:
                return _Outcome(parse(text, tag), attempt, None, latency)
            except ParseError as e:
                error = f"parse: {e}"
                self.stats.parse_failures += 1
                log.info("judge %s: %s (attempt %d/%d)", self.name, error, attempt, self.retries + 1)
        log.warning("judge %s: %s ungraded after %d attempts: %s", self.name, what, attempt, error)
        if timed_out:  # the server may still be busy with it: cool down before the slot takes the next call
            await asyncio.sleep(self._delay(attempt))
        return _Outcome(None, attempt, error, latency)

    def _verdict(self, c: Criterion, parsed: Parsed | None, out: _Outcome, error: str | None = None) -> Verdict:
        if parsed is None:
            self.stats.ungraded += 1
            return Verdict(
                c.id, judge=self.name, attempts=out.attempts, error=error or out.error, latency_s=out.latency_s
            )
        self.stats.graded += 1
        return Verdict(
            c.id,
            met=parsed.met,
            score=parsed.score,
            explanation=parsed.explanation,
            judge=self.name,
            attempts=out.attempts,
            latency_s=out.latency_s,
        )

    # ------------------------------------------------------------------ modes

    async def _grade_one(
        self, content: _Content, c: Criterion, tag: str, templates: TemplateSet | None = None
    ) -> Verdict:
        template = (templates or self.templates).for_criterion(c)
        per_mode: GradingMode = "binary" if c.binary else "tiered"
        lo, hi = score_range(c)

        def make_prompt(tag: str, level: int) -> str:
            return template.render(
                prompt_values(content.conversation, content.view(level), [c], tag, per_mode, guard=None)
            )

        def parse(text: str, tag: str) -> Parsed:
            return parse_binary(text, tag) if c.binary else parse_score(text, lo, hi, tag)

        schema = (lambda: binary_schema(self._chars)) if c.binary else (lambda: score_schema(lo, hi, self._chars))
        out = await self._attempts(make_prompt, parse, f"criterion {c.id!r}", schema, tag)
        return self._verdict(c, out.result, out)

    async def _grade_batch(self, request: GradingRequest, content: _Content, tag: str) -> list[Verdict]:
        """One call for all criteria (retried until a JSON list comes back), then one call per criterion
        for the items that list did not cover."""
        template = self.templates.primary
        criteria = list(request.criteria)
        expected = [(c.id, c.binary, score_range(c)) for c in criteria]
        got: dict[str, Parsed] = {}
        errors: dict[str, str] = {}

        def make_prompt(tag: str, level: int) -> str:
            return template.render(
                prompt_values(content.conversation, content.view(level), criteria, tag, "batch", guard=None)
            )

        def parse(text: str, tag: str) -> dict[str, Parsed | ParseError]:
            return parse_batch(text, expected, tag)  # raises ParseError only when there is no list at all

        out = await self._attempts(
            make_prompt,
            parse,
            f"batch of {len(criteria)} criteria",
            lambda: batch_schema(expected, self._batch_chars(len(criteria))),
            tag,
        )
        for cid, r in (out.result or {}).items():
            if isinstance(r, Parsed):
                got[cid] = r
            else:
                errors[cid] = f"parse: {r}"
        verdicts = {c.id: self._verdict(c, got[c.id], out) for c in criteria if c.id in got}
        missing = [c for c in criteria if c.id not in got]
        answered = out.result is not None or (out.error or "").startswith("parse")
        if missing and answered:  # the model answers, just not (all) in the list: ask item by item
            if self._fallback is None:
                self._fallback = TemplateSet("binary")
            self.stats.batch_fallbacks += len(missing)
            log.info(
                "judge %s: batch answer left %d of %d criteria; grading them one by one",
                self.name,
                len(missing),
                len(criteria),
            )
            singles = await asyncio.gather(*(self._grade_one(content, c, tag, self._fallback) for c in missing))
            for c, v in zip(missing, singles):
                v.attempts += out.attempts
                v.latency_s += out.latency_s
                if v.ungraded and c.id in errors:
                    v.error = f"{v.error} (batch: {errors[c.id]})"
                verdicts[c.id] = v
        else:
            for c in missing:
                verdicts[c.id] = self._verdict(c, None, out, errors.get(c.id))
        return [verdicts[c.id] for c in criteria]

    def _batch_chars(self, n: int) -> int:
        """Explanation cap per item of a batch, so that all ``n`` items fit in ``max_tokens`` together."""
        max_tokens = int(self.sampling.get("max_tokens") or 512)
        return max(40, int(2.5 * (max_tokens - 24 * n) / max(1, n)))

    async def _grade_holistic(self, request: GradingRequest, content: _Content, tag: str) -> list[Verdict]:
        template = self.templates.primary
        lo, hi = holistic_scale(request.criteria)

        def make_prompt(tag: str, level: int) -> str:
            return template.render(
                prompt_values(content.conversation, content.view(level), request.criteria, tag, "holistic", guard=None)
            )

        out = await self._attempts(
            make_prompt,
            lambda t, tag: parse_score(t, lo, hi, tag),
            "holistic score",
            lambda: score_schema(lo, hi, self._chars),
            tag,
        )
        verdicts = []
        for c in request.criteria:
            parsed = out.result
            if parsed is not None:
                frac = (parsed.score - lo) / (hi - lo)
                if c.binary:  # a good overall reply "meets" positive items and avoids negative ones
                    met = (frac < 0.5) if c.negative else (frac >= 0.5)
                    parsed = Parsed(met=met, score=None, explanation=parsed.explanation)
                else:
                    clo, chi = score_range(c)
                    parsed = Parsed(met=None, score=clo + frac * (chi - clo), explanation=parsed.explanation)
            verdicts.append(self._verdict(c, parsed, out))
        return verdicts

    async def grade(self, request: GradingRequest) -> list[Verdict]:
        """One verdict per criterion of ``request``, in order (ungraded where the budget ran out).

        One delimiter nonce serves the whole response; identical requests in flight are graded once
        (see the module docstring).
        """
        if not request.criteria:
            return []
        content = self.content(request)
        if content.cut:
            self.stats.truncated += 1
        seen = content.request(request)
        tag = new_tag()  # drawn now that the response exists; shared by its criteria and their retries
        if self.mode in ("binary", "tiered"):

            async def one(c: Criterion) -> Verdict:
                [v] = await self._shared(
                    f"{c.id}|{self._key(seen, c)}", [c.id], lambda: self._one_list(content, c, tag)
                )
                return v

            return list(await asyncio.gather(*(one(c) for c in request.criteria)))
        ids = [c.id for c in request.criteria]
        key = "|".join([self.mode] + [self._key(seen, c) for c in request.criteria] + ids)
        if self.mode == "batch":
            return await self._shared(key, ids, lambda: self._grade_batch(request, content, tag))
        return await self._shared(key, ids, lambda: self._grade_holistic(request, content, tag))

    async def _one_list(self, content: _Content, c: Criterion, tag: str) -> list[Verdict]:
        return [await self._grade_one(content, c, tag)]

    async def aclose(self) -> None:
        """Close the backend if it holds resources."""
        close = getattr(self.backend, "aclose", None)
        if close is not None:
            await close()

    def cache_key(self, request: GradingRequest, criterion: Criterion) -> str:
        """Verdict-cache key of ``criterion`` in ``request`` for this judge, on the content as it sees it
        (unchanged for content that sanitising and the cap leave as written)."""
        return self._key(self.content(request).request(request), criterion)

    def _key(self, seen: GradingRequest, criterion: Criterion) -> str:
        return request_key(self.name, self.templates, seen, criterion)


def _context_error(e: BaseException) -> bool:
    """The server rejected the prompt as longer than its context (HTTP 400/413 saying so)."""
    return getattr(e, "status", None) in (400, 413) and bool(CONTEXT_ERROR.search(str(e)))
