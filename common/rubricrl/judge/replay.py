"""ReplayJudge: serve verdicts from a verdict cache only (reproducible re-scoring, no model).

The keys are computed exactly as the judge that filled the cache computed them, so a replay must be
configured with the same judge ``model``, ``mode`` and ``template``. A miss is ungraded with
``error="not in cache"``: it is never guessed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rubricrl.judge.cache import VerdictCache, request_key
from rubricrl.judge.interfaces import GradingMode, GradingRequest, Verdict
from rubricrl.judge.llm import JudgeStats
from rubricrl.judge.prompts import TemplateSet
from rubricrl.types import Criterion

log = logging.getLogger(__name__)

NOT_IN_CACHE = "not in cache"


class ReplayJudge:
    """A judge that only reads a verdict cache.

    Args:
        cache: an open cache, or the path of an existing cache file (opened read-only).
        name: the judge model name the cache was filled with.
        mode: the grading mode it was filled with.
        template: the template spec it was filled with (None: the mode's default).
    """

    def __init__(
        self, cache: VerdictCache | str | Path, name: str, mode: GradingMode = "binary", template: str | None = None
    ):
        self.cache = cache if isinstance(cache, VerdictCache) else VerdictCache(cache, readonly=True)
        self.name = name
        self.mode: GradingMode = mode
        self.templates = TemplateSet(mode, template)
        self.stats = JudgeStats()

    def cache_key(self, request: GradingRequest, criterion: Criterion) -> str:
        """The key the original judge stored ``criterion``'s verdict under."""
        return request_key(self.name, self.templates, request, criterion)

    async def grade(self, request: GradingRequest) -> list[Verdict]:
        """Cached verdicts in criterion order; misses are ungraded (``error="not in cache"``)."""
        out = []
        for c in request.criteria:
            v = self.cache.get(self.cache_key(request, c), c.id)
            if v is None:
                self.stats.ungraded += 1
                log.debug("replay miss for criterion %r of rubric %r", c.id, request.rubric_id)
                v = Verdict(c.id, judge=self.name, error=NOT_IN_CACHE)
            else:
                self.stats.cache_hits += 1
            out.append(v)
        return out

    async def aclose(self) -> None:
        """Close the cache."""
        self.cache.close()
