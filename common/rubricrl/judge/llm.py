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
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from rubricrl.judge.backends import BackendError
from rubricrl.judge.interfaces import ChatBackend, GradingMode, GradingRequest, Verdict
from rubricrl.judge.parsing import ParseError, Parsed, parse_batch, parse_binary, parse_score
from rubricrl.judge.prompts import TemplateSet, holistic_scale, new_tag, prompt_values, score_range
from rubricrl.judge.schemas import batch_schema, binary_schema, explanation_chars, response_format, score_schema
from rubricrl.rubrics.schema import Criterion

log = logging.getLogger(__name__)


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

    @property
    def mean_latency_s(self) -> float:
        """Mean wall time per model call (0 when no call was made)."""
        return self.latency_sum_s / self.calls if self.calls else 0.0

    def as_dict(self) -> dict[str, float]:
        """All counters plus ``mean_latency_s``, for logging."""
        d: dict[str, float] = asdict(self)
        d["mean_latency_s"] = self.mean_latency_s
        return d

    def add(self, other: "JudgeStats") -> "JudgeStats":
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
    ):
        self.backend = backend
        self.structured_output = structured_output
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
    def from_config(cls, cfg: Any, backend: ChatBackend) -> "LLMJudge":
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
        )

    # ------------------------------------------------------------------ plumbing

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:  # asyncio primitives are loop-bound
            self._sem, self._sem_loop = asyncio.Semaphore(self.concurrency), loop
        return self._sem

    def _inflight_map(self) -> dict[str, "asyncio.Future[Any]"]:
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
            copies = [dataclasses.replace(v, criterion_id=cid, attempts=0, latency_s=0.0)
                      for cid, v in zip(ids, verdicts)]
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
        make_prompt: Callable[[str], str],
        parse: Callable[[str, str], Any],
        what: str,
        schema: Callable[[], dict[str, Any]] | None,
        tag: str,
    ) -> _Outcome:
        """Call the model until ``parse`` succeeds or the retry budget is spent.

        Every attempt uses the response's delimiter ``tag``. The concurrency slot is held across every
        attempt and backoff of this call (see the module docstring); the wait for it is ``queue_wait_s``.
        """
        t0 = time.perf_counter()
        async with self._semaphore():
            self.stats.queue_wait_s += time.perf_counter() - t0
            return await self._attempts_in_slot(make_prompt, parse, what, schema, tag)

    async def _attempts_in_slot(
        self,
        make_prompt: Callable[[str], str],
        parse: Callable[[str, str], Any],
        what: str,
        schema: Callable[[], dict[str, Any]] | None,
        tag: str,
    ) -> _Outcome:
        error: str | None = None
        latency = 0.0
        attempt = 0
        timed_out = False
        sampling = dict(self.sampling)
        if self.structured_output and schema is not None:
            sampling["response_format"] = response_format(schema())
        for attempt in range(1, self.retries + 2):
            if attempt > 1:
                self.stats.retries += 1
                await asyncio.sleep(self._delay(attempt - 1))
            messages = [{"role": "user", "content": make_prompt(tag)}]
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
            return Verdict(c.id, judge=self.name, attempts=out.attempts, error=error or out.error,
                           latency_s=out.latency_s)
        self.stats.graded += 1
        return Verdict(c.id, met=parsed.met, score=parsed.score, explanation=parsed.explanation,
                       judge=self.name, attempts=out.attempts, latency_s=out.latency_s)

    # ------------------------------------------------------------------ modes

    async def _grade_one(self, request: GradingRequest, c: Criterion, tag: str,
                         templates: TemplateSet | None = None) -> Verdict:
        template = (templates or self.templates).for_criterion(c)
        per_mode: GradingMode = "binary" if c.binary else "tiered"
        lo, hi = score_range(c)

        def make_prompt(tag: str) -> str:
            return template.render(prompt_values(request.conversation, request.response, [c], tag, per_mode))

        def parse(text: str, tag: str) -> Parsed:
            return parse_binary(text, tag) if c.binary else parse_score(text, lo, hi, tag)

        schema = (lambda: binary_schema(self._chars)) if c.binary else (lambda: score_schema(lo, hi, self._chars))
        out = await self._attempts(make_prompt, parse, f"criterion {c.id!r}", schema, tag)
        return self._verdict(c, out.result, out)

    async def _grade_batch(self, request: GradingRequest, tag: str) -> list[Verdict]:
        """One call for all criteria (retried until a JSON list comes back), then one call per criterion
        for the items that list did not cover."""
        template = self.templates.primary
        criteria = list(request.criteria)
        expected = [(c.id, c.binary, score_range(c)) for c in criteria]
        got: dict[str, Parsed] = {}
        errors: dict[str, str] = {}

        def make_prompt(tag: str) -> str:
            return template.render(prompt_values(request.conversation, request.response, criteria, tag, "batch"))

        def parse(text: str, tag: str) -> dict[str, Parsed | ParseError]:
            return parse_batch(text, expected, tag)  # raises ParseError only when there is no list at all

        out = await self._attempts(make_prompt, parse, f"batch of {len(criteria)} criteria",
                                   lambda: batch_schema(expected, self._batch_chars(len(criteria))), tag)
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
            log.info("judge %s: batch answer left %d of %d criteria; grading them one by one",
                     self.name, len(missing), len(criteria))
            singles = await asyncio.gather(*(self._grade_one(request, c, tag, self._fallback) for c in missing))
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

    async def _grade_holistic(self, request: GradingRequest, tag: str) -> list[Verdict]:
        template = self.templates.primary
        lo, hi = holistic_scale(request.criteria)

        def make_prompt(tag: str) -> str:
            return template.render(
                prompt_values(request.conversation, request.response, request.criteria, tag, "holistic")
            )

        out = await self._attempts(make_prompt, lambda t, tag: parse_score(t, lo, hi, tag), "holistic score",
                                   lambda: score_schema(lo, hi, self._chars), tag)
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
        tag = new_tag()  # drawn now that the response exists; shared by its criteria and their retries
        if self.mode in ("binary", "tiered"):
            async def one(c: Criterion) -> Verdict:
                [v] = await self._shared(f"{c.id}|{self.cache_key(request, c)}", [c.id],
                                         lambda: self._one_list(request, c, tag))
                return v

            return list(await asyncio.gather(*(one(c) for c in request.criteria)))
        ids = [c.id for c in request.criteria]
        key = "|".join([self.mode] + [self.cache_key(request, c) for c in request.criteria] + ids)
        run = self._grade_batch if self.mode == "batch" else self._grade_holistic
        return await self._shared(key, ids, lambda: run(request, tag))

    async def _one_list(self, request: GradingRequest, c: Criterion, tag: str) -> list[Verdict]:
        return [await self._grade_one(request, c, tag)]

    async def aclose(self) -> None:
        """Close the backend if it holds resources."""
        close = getattr(self.backend, "aclose", None)
        if close is not None:
            await close()


    def cache_key(self, request: GradingRequest, criterion: Criterion) -> str:
        """Verdict-cache key of ``criterion`` in ``request`` for this judge."""
        from rubricrl.judge.cache import request_key

        return request_key(self.name, self.templates, request, criterion)
