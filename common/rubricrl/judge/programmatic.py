"""ProgrammaticJudge: grade ``kind: programmatic`` criteria with their named verifiers.

A verifier's ``passed`` becomes ``met`` (for detectors of undesirable behaviour paired with
``negative: true`` criteria, ``passed`` means the behaviour is present). A verifier that raises gives
an ungraded verdict carrying the error; an ``llm`` criterion handed to this judge is ungraded too.
"""

from __future__ import annotations

import logging

from rubricrl.judge.interfaces import GradingRequest, Verdict
from rubricrl.judge.llm import JudgeStats
from rubricrl.rubrics.verifiers import run_verifier
from rubricrl.types import Criterion

log = logging.getLogger(__name__)


class ProgrammaticJudge:
    """Runs verifiers; no model involved."""

    name = "programmatic"

    def __init__(self) -> None:
        self.stats = JudgeStats()

    def grade_criterion(self, response: str, c: Criterion) -> Verdict:
        """Verdict of one programmatic criterion."""
        if c.kind != "programmatic" or not c.verifier:
            self.stats.ungraded += 1
            return Verdict(c.id, judge=self.name, error="not a programmatic criterion (no verifier)")
        judge = f"verifier:{c.verifier}"
        try:
            result = run_verifier(c.verifier, response, dict(c.args))
        except Exception as e:  # noqa: BLE001  (any verifier failure is reported, never fatal)
            self.stats.ungraded += 1
            log.warning("verifier %s failed on criterion %r: %s: %s", c.verifier, c.id, type(e).__name__, e)
            return Verdict(c.id, judge=judge, attempts=1, error=f"verifier {c.verifier}: {type(e).__name__}: {e}")
        self.stats.graded += 1
        return Verdict(c.id, met=bool(result.passed), score=None, explanation=result.detail, judge=judge, attempts=1)

    async def grade(self, request: GradingRequest) -> list[Verdict]:
        """One verdict per criterion, in order."""
        return [self.grade_criterion(request.response, c) for c in request.criteria]

    async def aclose(self) -> None:
        """Nothing to release."""
