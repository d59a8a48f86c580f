"""Rubric rewards for training: grade with a ``rubricrl.judge`` judge, aggregate with ``rubricrl.reward``.

:class:`RubricScorer` is engine-independent (TRL's reward function and NeMo RL's environment both call
it). For each (conversation, response, rubric id) it grades the task rubric and, when configured, the
defense rubric, then returns :class:`Scored`:

* ``task``: ``rubric_reward(rubric, verdicts)`` of the task rubric (its own aggregation, shaping, veto);
* ``defense``: ``rubric_reward(defense_rubric, verdicts)``; its ``vetoed`` flag (a critical hacking
  pattern present) replaces the reward with the defense rubric's veto floor;
* ``reward``: the training reward (``task.reward``, or the floor when the defense vetoed).

No formula lives here beyond that veto: aggregation, shaping and each rubric's own veto are
``rubricrl.reward``'s.

Ungraded verdicts in training rewards: **pessimistic by default** (:data:`TRAINING_UNGRADED`). A verdict
the judge could not give (timeouts, unparsable answers, a prompt past the judge's context) counts at its
worst: a positive item not met, a negative (penalty) item present, and an ungraded critical item vetoes
(``ungraded: pessimistic``, :mod:`rubricrl.reward.aggregators`). With ``exclude`` an ungraded penalty
or veto item simply left the reward, so a policy could raise its reward by making those items
ungraded (a padded response did, before the judge capped lengths). :class:`RubricScorer` gives every
rubric it scores that policy unless the rubric's own ``aggregation.params`` set ``ungraded``
(:func:`training_rubric`); pass ``ungraded=...`` to choose another, or ``ungraded=None`` to score
rubrics exactly as written. Evaluation keeps ``exclude`` (HealthBench scoring, for parity with
simple-evals: :mod:`rubricrl.scoring.healthbench`), so training and evaluation differ only in what an
ungraded verdict counts as. ``ungraded_share`` limits (``run.max_ungraded_share``) still stop a run whose
judge mostly fails.

:meth:`RubricScorer.score` grades from synchronous code (on the judge's background event loop);
:meth:`RubricScorer.ascore` is the same on the caller's event loop (TRL's async reward functions, which
TRL runs concurrently with each other). Either way all requests of a batch are in flight together, and
each request's programmatic checks run on the loop between the judge calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rubricrl.errors import UserError
from rubricrl.judge import GradingRequest, Verdict, grade_many
from rubricrl.reward import RewardResult, rubric_reward
from rubricrl.reward.registry import UNGRADED_POLICIES
from rubricrl.rubrics.schema import Rubric

log = logging.getLogger(__name__)
Message = dict[str, str]

#: What an ungraded verdict counts as in a training reward unless the rubric says otherwise.
TRAINING_UNGRADED = "pessimistic"


def training_rubric(rubric: Rubric, ungraded: str | None = TRAINING_UNGRADED) -> Rubric:
    """``rubric`` as training scores it: ``ungraded`` applied unless its aggregation sets ``ungraded`` itself.

    Args:
        rubric: a task or defense rubric.
        ungraded: the policy (``pessimistic``, ``exclude``, ``not_met``); None leaves the rubric as is.

    Raises:
        UserError: ``ungraded`` is not a known policy.
    """
    if ungraded is None:
        return rubric
    if ungraded not in UNGRADED_POLICIES:
        raise UserError(
            f"unknown ungraded policy {ungraded!r} for training rewards; choose one of {', '.join(UNGRADED_POLICIES)}"
        )
    params = dict(rubric.aggregation.params or {})
    if "ungraded" in params:
        return rubric
    params["ungraded"] = ungraded
    return rubric.model_copy(update={"aggregation": rubric.aggregation.model_copy(update={"params": params})})


@dataclass
class Scored:
    """The reward of one response and how it was reached."""

    rubric_id: str
    family: str
    reward: float
    task: RewardResult
    defense: RewardResult | None = None
    verdicts: list[Verdict] | None = None

    @property
    def defense_vetoed(self) -> bool:
        return bool(self.defense is not None and self.defense.vetoed)

    @property
    def vetoed(self) -> bool:
        return self.task.vetoed or self.defense_vetoed

    @property
    def n_ungraded(self) -> int:
        return self.task.n_ungraded + (self.defense.n_ungraded if self.defense else 0)


def family_of(rubric: Rubric) -> str:
    """Rubric family used to split logged rewards: its category (``stage1/...``), else its id prefix."""
    return rubric.category or rubric.id.split("-")[0]


def programmatic_only(rubric: Rubric) -> Rubric:
    """A copy of ``rubric`` keeping only its programmatic criteria (for verifier-only stages)."""
    kept = tuple(c for c in rubric.criteria if c.kind == "programmatic")
    if not kept:
        raise ValueError(f"rubric {rubric.id!r} has no programmatic criteria")
    return rubric.model_copy(update={"criteria": kept})


class RubricScorer:
    """Scores responses against rubrics looked up by id.

    Args:
        rubrics: rubric id -> Rubric (task rubrics: bank rubrics and instance rubrics).
        judge: a ``rubricrl.judge`` judge (``RoutingJudge`` from ``build_judge``).
        defense: optional defense rubric applied to every response as a veto.
        ungraded: ungraded policy for rubrics that do not set one (:func:`training_rubric`; default
            ``pessimistic``); None scores every rubric exactly as written.
    """

    def __init__(
        self,
        rubrics: Mapping[str, Rubric],
        judge: Any,
        defense: Rubric | None = None,
        ungraded: str | None = TRAINING_UNGRADED,
    ):
        self.ungraded = ungraded
        self.rubrics = {rid: training_rubric(r, ungraded) for rid, r in rubrics.items()}
        self.judge = judge
        self.defense = training_rubric(defense, ungraded) if defense is not None else None
        self.last_latency_s = 0.0

    def rubric(self, rubric_id: str) -> Rubric:
        try:
            return self.rubrics[rubric_id]
        except KeyError:
            raise KeyError(
                f"unknown rubric id {rubric_id!r} (the dataset names a rubric the scorer was not given)"
            ) from None

    def requests(
        self, conversations: Sequence[list[Message]], responses: Sequence[str], rubric_ids: Sequence[str]
    ) -> list[GradingRequest]:
        """The grading requests of a batch: the task rubric of each response, then its defense rubric."""
        if not (len(conversations) == len(responses) == len(rubric_ids)):
            raise ValueError("conversations, responses and rubric_ids differ in length")
        requests: list[GradingRequest] = []
        for conv, resp, rid in zip(conversations, responses, rubric_ids):
            r = self.rubric(rid)
            requests.append(GradingRequest(conversation=list(conv), response=resp, criteria=r.criteria, rubric_id=r.id))
            if self.defense is not None:
                requests.append(
                    GradingRequest(
                        conversation=list(conv),
                        response=resp,
                        criteria=self.defense.criteria,
                        rubric_id=self.defense.id,
                    )
                )
        return requests

    def score(
        self, conversations: Sequence[list[Message]], responses: Sequence[str], rubric_ids: Sequence[str]
    ) -> list[Scored]:
        """Grade and aggregate; one :class:`Scored` per response, in order."""
        requests = self.requests(conversations, responses, rubric_ids)
        t0 = time.monotonic()
        verdicts = grade_many(self.judge, requests)
        self.last_latency_s = time.monotonic() - t0
        return self.aggregate(rubric_ids, verdicts)

    async def ascore(
        self, conversations: Sequence[list[Message]], responses: Sequence[str], rubric_ids: Sequence[str]
    ) -> list[Scored]:
        """:meth:`score` on the running event loop: every request of the batch graded concurrently."""
        requests = self.requests(conversations, responses, rubric_ids)
        t0 = time.monotonic()
        verdicts = list(await asyncio.gather(*(self.judge.grade(r) for r in requests)))
        self.last_latency_s = time.monotonic() - t0
        return self.aggregate(rubric_ids, verdicts)

    def aggregate(self, rubric_ids: Sequence[str], verdicts: Sequence[list[Verdict]]) -> list[Scored]:
        """:class:`Scored` per response from the verdict lists of :meth:`requests`."""
        step = 2 if self.defense is not None else 1
        out = []
        for i, rid in enumerate(rubric_ids):
            r = self.rubric(rid)
            task_v = verdicts[i * step]
            task = rubric_reward(r, task_v)
            defense = None
            reward = task.reward
            all_v = list(task_v)
            if self.defense is not None:
                dv = verdicts[i * step + 1]
                defense = rubric_reward(self.defense, dv)
                all_v += dv
                if defense.vetoed:
                    veto = self.defense.aggregation.veto
                    reward = veto.floor if veto is not None else 0.0
            out.append(
                Scored(
                    rubric_id=rid, family=family_of(r), reward=float(reward), task=task, defense=defense, verdicts=all_v
                )
            )
        return out
