"""The Judge boundary: what every grading backend takes and returns.

A judge is always passed in as an object (built from a config by ``rubricrl.judge.build_judge``),
never reached through module constants. Backends:

* ``LLMJudge`` over a ``ChatBackend`` (OpenAI-compatible HTTP, in-process transformers model);
* ``ProgrammaticJudge`` (named verifiers);
* ``ReplayJudge`` (verdicts from a cache; misses are ungraded);
* ``RoutingJudge`` (programmatic criteria to verifiers, the rest to a model) with an optional cache.

A verdict that could not be obtained is ungraded (``met is None and score is None``) and counted,
never silently ``False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from rubricrl.rubrics.schema import Criterion

GradingMode = Literal["binary", "tiered", "batch", "holistic"]
Message = dict[str, str]  # {"role": ..., "content": ...}


@dataclass
class Verdict:
    """The judge's decision on one criterion for one response.

    Attributes:
        criterion_id: the criterion graded.
        met: binary decision; for negative criteria ``True`` means the undesirable behaviour is present.
        score: raw tier score (tiered and holistic modes), in the criterion's tier units.
        explanation: the judge's stated reason.
        judge: identifier of the judge that produced it (model name or verifier).
        attempts: number of judge calls spent.
        error: why the verdict is ungraded, when it is.
        cached: served from a verdict cache.
    """

    criterion_id: str
    met: bool | None = None
    score: float | None = None
    explanation: str = ""
    judge: str = ""
    attempts: int = 0
    error: str | None = None
    cached: bool = False
    latency_s: float = 0.0

    @property
    def ungraded(self) -> bool:
        return self.met is None and self.score is None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"criteria_met": self.met, "explanation": self.explanation}
        if self.score is not None:
            out["score"] = self.score
        if self.error:
            out["error"] = self.error
        out["judge"] = self.judge
        out["attempts"] = self.attempts
        return out

    @classmethod
    def from_json(cls, criterion_id: str, d: dict[str, Any]) -> Verdict:
        return cls(
            criterion_id=criterion_id,
            met=d.get("criteria_met"),
            score=d.get("score"),
            explanation=d.get("explanation", "") or "",
            judge=d.get("judge", "") or "",
            attempts=int(d.get("attempts", 0) or 0),
            error=d.get("error"),
        )


@dataclass
class GradingRequest:
    """One response to grade against a list of criteria.

    Attributes:
        conversation: the prompt messages (without the graded response).
        response: the assistant turn being graded.
        criteria: what to grade it against.
        rubric_id: for logs and caches.
        metadata: free-form (e.g. ``prompt_id``), passed to programmatic verifiers.
    """

    conversation: list[Message]
    response: str
    criteria: Sequence[Criterion]
    rubric_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Judge(Protocol):
    """Grades responses against criteria."""

    name: str

    async def grade(self, request: GradingRequest) -> list[Verdict]:
        """Return one verdict per criterion of ``request``, in order."""
        ...


@runtime_checkable
class ChatBackend(Protocol):
    """A chat model: messages in, text out. Raises on transport errors (the judge retries)."""

    model: str

    async def complete(self, messages: list[Message], **sampling: Any) -> str: ...
