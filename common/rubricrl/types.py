"""The bottom layer: the data the rubric, judge and reward packages exchange.

Nothing here imports the rest of ``rubricrl``, so every package can import it without a cycle:

* the rubric schema (:class:`Rubric`, :class:`Criterion`, :class:`Tier`, :class:`AggregationSpec`,
  :class:`VetoSpec`); loading and validation live in :mod:`rubricrl.rubrics`, which re-exports these
  names from :mod:`rubricrl.rubrics.schema`;
* what a judge takes and returns (:class:`GradingRequest`, :class:`Verdict`, :data:`Message`,
  :data:`GradingMode`); the judge protocols live in :mod:`rubricrl.judge.interfaces`.

Rubric schema
-------------
One structure covers Rubicon's multi-dimensional rubrics (weighted criteria with ordered score tiers,
programmatic or LLM-judged, critical criteria that veto) and HealthBench's rubric items (signed
points, ``axis:`` / ``level:`` / ``cluster:`` tags).

A criterion is scored in one of two ways:

* **points** (HealthBench semantics): a signed integer-like number; positive items reward presence of a
  behaviour, negative items penalise presence of an undesirable one. The verdict is binary.
* **weight** (Rubicon semantics): a positive weight, optionally with ordered ``tiers`` mapping
  qualitative levels to numbers. Without tiers the verdict is binary (met = 1, not met = 0).

Both apply to ``kind: programmatic`` criteria too: a verifier's verdict is binary (it passed or not), so
``points`` mean exactly what they mean for a judged HealthBench item: positive points are earned when the
verifier passes; negative points are lost when it passes (a detector of the undesirable behaviour).

Validation happens here, once, at load time. Loaders turn pydantic errors into ``path:line`` messages.

Verdicts
--------
A verdict that could not be obtained is ungraded (``met is None and score is None``) and counted,
never silently ``False``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Scope = Literal["dataset", "task", "instance"]
CriterionKind = Literal["llm", "programmatic"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    """One qualitative level of a criterion, mapped to a number.

    Attributes:
        score: numeric value of the level (e.g. 1..10 for WritingBench, 0..20 for Creative Writing v3).
        label: short name of the level ("poor", "9-10").
        description: what a response at this level looks like; shown to the judge.
    """

    score: float
    label: str = ""
    description: str = ""


class Criterion(_Strict):
    """A single critic dimension of a rubric.

    Attributes:
        id: unique within its rubric; stable across versions (used in caches and logs).
        text: the criterion as the judge (or a reader) sees it.
        weight: positive weight in weighted aggregations (ignored when ``points`` is set).
        points: signed HealthBench-style points; ``None`` for weighted criteria.
        tiers: ordered score levels, strictly increasing in ``score``; ``None`` means binary.
        scale: ``(min, max)`` of the raw score when it differs from the tier scores (WritingBench
            tiers are labelled "1-2" .. "9-10" but the judge answers an integer 1..10).
        kind: ``llm`` (judged by a model) or ``programmatic`` (a named verifier).
        verifier: verifier name for programmatic criteria (see ``rubricrl.rubrics.verifiers``).
        args: keyword arguments for the verifier.
        critical: failing this criterion vetoes the whole reward (see ``rubricrl.reward``).
        negative: the criterion describes an undesirable behaviour; "met" means the behaviour is present.
            Implied by ``points < 0``; set explicitly for weighted penalties (e.g. hacking patterns).
        dimension: optional grouping key for saturation / interaction aggregation (defaults to ``id``).
        tags: free tags, e.g. ``axis:accuracy``, ``level:example``, ``cluster:...``.
    """

    id: str
    text: str
    weight: float = 1.0
    points: float | None = None
    tiers: tuple[Tier, ...] | None = None
    scale: tuple[float, float] | None = None
    kind: CriterionKind = "llm"
    verifier: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    critical: bool = False
    negative: bool = False
    dimension: str | None = None
    tags: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _id_nonempty(cls, v: str) -> str:
        if not v or not v.strip():
            raise ValueError("criterion id is empty")
        return v

    @field_validator("text")
    @classmethod
    def _text_nonempty(cls, v: str) -> str:
        if not v or not v.strip():
            raise ValueError("criterion text is empty")
        return v

    @field_validator("weight")
    @classmethod
    def _weight_positive(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"weight must be > 0, got {v}")
        return v

    @model_validator(mode="after")
    def _check(self) -> Criterion:
        if self.tiers is not None:
            if len(self.tiers) < 2:
                raise ValueError("tiers need at least two levels")
            scores = [t.score for t in self.tiers]
            if any(b <= a for a, b in zip(scores, scores[1:])):
                raise ValueError(f"tiers must be strictly increasing in score, got {scores}")
            if self.points is not None:
                raise ValueError("a criterion has either points (binary) or tiers, not both")
        if self.scale is not None:
            if self.tiers is None:
                raise ValueError("'scale' needs 'tiers'")
            if not self.scale[1] > self.scale[0]:
                raise ValueError(f"scale must be (min, max) with max > min, got {list(self.scale)}")
        if self.kind == "programmatic" and not self.verifier:
            raise ValueError("programmatic criterion needs a 'verifier'")
        if self.kind == "llm" and self.verifier:
            raise ValueError("'verifier' is only for kind: programmatic")
        if self.points is not None and self.points < 0 and not self.negative:
            object.__setattr__(self, "negative", True)
        return self

    @property
    def binary(self) -> bool:
        """True when the verdict is met / not met (no tiers)."""
        return self.tiers is None

    @property
    def group(self) -> str:
        """Dimension used by grouped aggregations."""
        return self.dimension or self.id

    def normalise(self, score: float) -> float:
        """Map a raw tier score to [0, 1] using ``scale`` or else the lowest and highest tier."""
        if self.tiers is None:
            return float(score)
        lo, hi = self.scale if self.scale is not None else (self.tiers[0].score, self.tiers[-1].score)
        return min(1.0, max(0.0, (score - lo) / (hi - lo)))


class VetoSpec(_Strict):
    """How critical criteria veto the reward.

    Attributes:
        floor: reward assigned when a critical criterion fails.
        threshold: a critical criterion "fails" when its normalised value is below this
            (for negative criteria: when the undesirable behaviour is present).
        on_ungraded: what an ungraded critical verdict does under the aggregation's ``ungraded:
            exclude`` or ``not_met``: ``ignore`` or ``veto``. Under ``ungraded: pessimistic`` (the
            default of training rewards) an ungraded critical verdict always vetoes.
    """

    floor: float = 0.0
    threshold: float = 0.5
    on_ungraded: Literal["ignore", "veto"] = "ignore"


class AggregationSpec(_Strict):
    """Which aggregator turns verdicts into a reward, and its parameters."""

    name: str = "weighted_mean"
    params: dict[str, Any] = Field(default_factory=dict)
    veto: VetoSpec | None = None


class Rubric(_Strict):
    """A set of criteria with an aggregation rule.

    Attributes:
        id: unique within a bank (or the ``prompt_id`` for HealthBench instance rubrics).
        scope: ``dataset``, ``task`` or ``instance`` granularity (Rubicon section 2).
        category: bank category, e.g. ``stage1/instruction_following``, ``stage2/creative``,
            ``style``, ``defense``, ``healthbench``.
        title, description: human-readable summary.
        instruction: for task-level constraint rubrics (stage 1), the sentence appended to a task
            prompt that imposes this rubric's constraints, e.g. "Answer in at most 120 words.".
        criteria: the critic dimensions.
        aggregation: how to combine verdicts.
        tags: rubric-level tags.
        source: provenance (author, paper section, importer and source file).
    """

    id: str
    scope: Scope = "task"
    category: str = ""
    title: str = ""
    description: str = ""
    instruction: str = ""
    criteria: tuple[Criterion, ...]
    aggregation: AggregationSpec = AggregationSpec()
    tags: tuple[str, ...] = ()
    source: str = ""

    @field_validator("id")
    @classmethod
    def _id_nonempty(cls, v: str) -> str:
        if not v or not v.strip():
            raise ValueError("rubric id is empty")
        return v

    @model_validator(mode="after")
    def _check(self) -> Rubric:
        if not self.criteria:
            raise ValueError("rubric has no criteria")
        seen: set[str] = set()
        for c in self.criteria:
            if c.id in seen:
                raise ValueError(f"duplicate criterion id {c.id!r}")
            seen.add(c.id)
        pointed = [c for c in self.criteria if c.points is not None]
        if pointed and len(pointed) != len(self.criteria):
            raise ValueError("mixing points-based and weight-based criteria in one rubric")
        if pointed and not any(c.points > 0 for c in pointed):  # type: ignore[operator]
            raise ValueError("no criterion has positive points (the score denominator would be zero)")
        return self

    @property
    def uses_points(self) -> bool:
        return self.criteria[0].points is not None

    def criterion(self, cid: str) -> Criterion:
        for c in self.criteria:
            if c.id == cid:
                return c
        raise KeyError(cid)

    def content_hash(self) -> str:
        """sha256 of the canonical JSON of the rubric's content (provenance excluded)."""
        payload = self.model_dump(mode="json", exclude={"source"})
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def bank_hash(rubrics: list[Rubric]) -> str:
    """Order-independent hash of a set of rubrics (for run provenance)."""
    h = hashlib.sha256()
    for digest in sorted(r.content_hash() for r in rubrics):
        h.update(digest.encode())
    return h.hexdigest()


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
