"""RoutingJudge: programmatic criteria to verifiers, the rest to a model judge, through a cache.

Order of work for one request: programmatic criteria are checked by the
:class:`~rubricrl.judge.programmatic.ProgrammaticJudge`; each ``llm`` criterion is looked up in the
verdict cache (if any); the misses go to the model judge in one sub-request; graded answers are
stored; verdicts come back in the request's criterion order. In holistic mode a partial hit regrades
all ``llm`` criteria together, since the one score depends on all of them.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Protocol

from rubricrl.judge.cache import VerdictCache
from rubricrl.judge.interfaces import GradingRequest, Verdict
from rubricrl.judge.llm import JudgeStats
from rubricrl.judge.programmatic import ProgrammaticJudge
from rubricrl.types import Criterion

log = logging.getLogger(__name__)

NO_MODEL_JUDGE = "no model judge configured for llm criteria (backend: programmatic)"


class ModelJudge(Protocol):
    """What RoutingJudge needs of a model judge (LLMJudge, ReplayJudge)."""

    name: str
    stats: JudgeStats
    mode: Any

    def cache_key(self, request: GradingRequest, criterion: Criterion) -> str: ...

    async def grade(self, request: GradingRequest) -> list[Verdict]: ...

    async def aclose(self) -> None: ...


class RoutingJudge:
    """Dispatches criteria by kind and wraps the model judge with a verdict cache.

    Args:
        model: judge for ``llm`` criteria (None: they are ungraded with a reason).
        programmatic: judge for ``programmatic`` criteria.
        cache: verdict cache for ``llm`` criteria (None: no caching).
    """

    def __init__(
        self, model: ModelJudge | None, programmatic: ProgrammaticJudge | None = None, cache: VerdictCache | None = None
    ):
        self.model = model
        self.programmatic = programmatic or ProgrammaticJudge()
        self.cache = cache
        self.name = model.name if model is not None else self.programmatic.name
        self._own = JudgeStats()

    @property
    def stats(self) -> JudgeStats:
        """Combined counters of the model judge, the verifiers and the cache.

        A fresh snapshot on every access; its ``reset()`` zeroes the underlying counters.
        """
        total = self._own.add(self.programmatic.stats)
        if self.model is not None:
            total = total.add(self.model.stats)
        total.reset = self.reset_stats  # type: ignore[method-assign]
        return total

    def reset_stats(self) -> None:
        """Zero every counter (model, verifiers, cache)."""
        self._own.reset()
        self.programmatic.stats.reset()
        if self.model is not None:
            self.model.stats.reset()

    async def grade(self, request: GradingRequest) -> list[Verdict]:
        """One verdict per criterion of ``request``, in its order."""
        out: dict[int, Verdict] = {}
        llm: list[tuple[int, Criterion]] = []
        for i, c in enumerate(request.criteria):
            if c.kind == "programmatic":
                out[i] = self.programmatic.grade_criterion(request.response, c)
            else:
                llm.append((i, c))
        if llm:
            out.update(await self._grade_llm(request, llm))
        return [out[i] for i in range(len(request.criteria))]

    async def _grade_llm(self, request: GradingRequest, llm: list[tuple[int, Criterion]]) -> dict[int, Verdict]:
        if self.model is None:
            self._own.ungraded += len(llm)
            return {i: Verdict(c.id, judge="none", error=NO_MODEL_JUDGE) for i, c in llm}
        sub = dataclasses.replace(request, criteria=[c for _, c in llm])
        keys: dict[int, str] = {}
        got: dict[int, Verdict] = {}
        if self.cache is not None:
            for i, c in llm:
                keys[i] = self.model.cache_key(sub, c)
                hit = self.cache.get(keys[i], c.id)
                if hit is not None:
                    got[i] = hit
            if getattr(self.model, "mode", None) == "holistic" and len(got) < len(llm):
                got = {}
            self._own.cache_hits += len(got)
        missing = [(i, c) for i, c in llm if i not in got]
        if missing:
            verdicts = await self.model.grade(dataclasses.replace(request, criteria=[c for _, c in missing]))
            for (i, _), v in zip(missing, verdicts):
                got[i] = v
                if self.cache is not None:
                    self.cache.put(keys[i], v)
        return got

    async def aclose(self) -> None:
        """Close the model judge and the cache."""
        if self.model is not None:
            await self.model.aclose()
        if self.cache is not None:
            self.cache.close()
