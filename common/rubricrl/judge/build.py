"""Build a judge from its config, and grade many requests from synchronous code.

``build_judge(cfg)`` returns a :class:`~rubricrl.judge.routing.RoutingJudge` for every backend:

============  ==================================================================
backend       llm criteria go to                      cache
============  ==================================================================
openai        LLMJudge over OpenAIChatBackend          ``cfg.cache`` if set
transformers  LLMJudge over TransformersChatBackend    ``cfg.cache`` if set
programmatic  nobody (ungraded, with the reason)       none
replay        ReplayJudge over ``cfg.cache``           (it is the cache)
============  ==================================================================

Programmatic criteria always go to the verifiers. ``grade_many`` runs requests concurrently on one
long-lived background event loop, so HTTP connection pools and semaphores survive across calls
(a training loop calls it once per step) and it works whether or not the caller has a loop running.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from rubricrl.errors import UserError
from rubricrl.judge.backends.openai_http import OpenAIChatBackend
from rubricrl.judge.backends.transformers_local import TransformersChatBackend
from rubricrl.judge.cache import VerdictCache
from rubricrl.judge.config import JudgeConfig
from rubricrl.judge.interfaces import GradingRequest, Verdict
from rubricrl.judge.llm import LLMJudge
from rubricrl.judge.programmatic import ProgrammaticJudge
from rubricrl.judge.replay import ReplayJudge
from rubricrl.judge.routing import RoutingJudge

log = logging.getLogger(__name__)
T = TypeVar("T")


def build_judge(cfg: JudgeConfig) -> RoutingJudge:
    """The judge ``cfg`` describes (see the module table).

    Raises:
        UserError: missing endpoint or API key variable, unknown template, replay without a cache file.
    """
    template = cfg.template if "template" in cfg.model_fields_set else None
    if cfg.backend == "programmatic":
        return RoutingJudge(None, ProgrammaticJudge())
    if cfg.backend == "replay":
        if cfg.cache is None:
            raise UserError("judge backend 'replay' needs 'cache' (the sqlite file to replay)")
        return RoutingJudge(ReplayJudge(cfg.cache, cfg.model, cfg.mode, template), ProgrammaticJudge())
    if cfg.backend == "openai":
        backend: Any = OpenAIChatBackend.from_config(cfg)
    elif cfg.backend == "transformers":
        backend = TransformersChatBackend.from_config(cfg)
    else:  # pragma: no cover  (JudgeConfig's Literal forbids it)
        raise UserError(f"unknown judge backend {cfg.backend!r}")
    model = LLMJudge.from_config(cfg, backend)
    cache = VerdictCache(cfg.cache) if cfg.cache is not None else None
    log.info(
        "judge %s: backend=%s mode=%s template=%s cache=%s",
        model.name,
        cfg.backend,
        cfg.mode,
        model.templates.primary.name,
        cfg.cache,
    )
    return RoutingJudge(model, ProgrammaticJudge(), cache)


# --------------------------------------------------------------------------- sync helpers

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="rubricrl-judge-loop", daemon=True).start()
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the shared background judge loop and wait for its result.

    Raises:
        RuntimeError: called from the background loop itself (would deadlock).
    """
    loop = _background_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError("run_sync called from the judge loop; await the coroutine instead")
    return asyncio.run_coroutine_threadsafe(coro, loop).result()


def grade_many(
    judge: Any,
    requests: Sequence[GradingRequest],
    progress: Callable[[int, int], None] | None = None,
) -> list[list[Verdict]]:
    """Grade ``requests`` concurrently and return their verdict lists in request order.

    Args:
        judge: any object with ``async grade(request) -> list[Verdict]``.
        requests: what to grade.
        progress: called as ``progress(done, total)`` after each request finishes.
    """

    async def _all() -> list[list[Verdict]]:
        total = len(requests)
        done = 0

        async def one(r: GradingRequest) -> list[Verdict]:
            nonlocal done
            v = await judge.grade(r)
            done += 1
            if progress is not None:
                progress(done, total)
            return v

        return list(await asyncio.gather(*(one(r) for r in requests)))

    return run_sync(_all())


def close_judge(judge: Any) -> None:
    """Release a judge used through :func:`grade_many` (its clients live on the background loop)."""
    close = getattr(judge, "aclose", None)
    if close is not None:
        run_sync(close())
