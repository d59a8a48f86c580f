"""The one training scorer: task rubric, defense veto, teacher routing and the rollout record.

Both engines call this module; their adapters only translate signatures (TRL's reward functions,
:mod:`rubricrl.train.trl_adapter`; NeMo RL's environment ``step``, :mod:`rubricrl.train.nemo_rl_env`).
For each :class:`Sample` (conversation, response, task rubric, optional defense rubric) it grades the
task rubric and the defense rubric with the judge it is given and returns :class:`Scored`:

* ``task``: ``rubric_reward(rubric, verdicts)`` of the task rubric (its own aggregation, shaping, veto);
* ``defense``: ``rubric_reward(defense, verdicts)``; its ``vetoed`` flag (a critical hacking pattern
  present) replaces the reward with the defense rubric's veto floor (:func:`defense_floor`);
* ``reward``: the training reward (``task.reward``, or that floor).

No formula lives here beyond that veto: aggregation, shaping and each rubric's own veto are
``rubricrl.reward``'s.

Ungraded verdicts in training rewards: **pessimistic by default** (:data:`TRAINING_UNGRADED`). A verdict
the judge could not give (timeouts, unparsable answers, a prompt past the judge's context) counts at its
worst: a positive item not met, a negative (penalty) item present, and an ungraded critical item vetoes
(``ungraded: pessimistic``, :mod:`rubricrl.reward.aggregators`). With ``exclude`` an ungraded penalty or
veto item simply left the reward, so a policy could raise its reward by making those items ungraded.
:func:`training_rubric` gives a rubric that policy unless its own ``aggregation.params`` set ``ungraded``.
Evaluation keeps ``exclude`` (HealthBench scoring, for parity with simple-evals). :func:`verdict_counts`
counts what a batch's rewards rest on, so :mod:`rubricrl.reward.health` stops a run whose judge mostly
fails (``run.max_ungraded_share``).

Teacher grading is a judge wrapper, :class:`TeacherRoutingJudge`: a seeded hash of a stable sample key
(rubric id, conversation, response; :func:`teacher_selected`) sends ``fraction`` of the samples to the
teacher as well as to the self-grader; with ``replace`` the teacher's verdicts are used for those samples,
otherwise they only measure agreement (:func:`agreement`). A sample's defense rubric goes the way of its
task rubric. The choice depends on neither batch order nor engine, so TRL and NeMo RL route the same
samples.

:class:`RubricScorer` looks task rubrics up by id (TRL's dataset column); :func:`score_samples` and
:func:`ascore_samples` take samples that carry their rubrics (NeMo RL's rollout metadata). All requests of a
batch are in flight together.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rubricrl.errors import UserError
from rubricrl.judge.build import run_sync
from rubricrl.judge.interfaces import GradingRequest, Verdict
from rubricrl.reward.interfaces import RewardResult
from rubricrl.reward.registry import UNGRADED_POLICIES, rubric_reward
from rubricrl.types import Criterion, Rubric

log = logging.getLogger(__name__)
Message = dict[str, str]
Grader = Literal["judge", "teacher"]

#: What an ungraded verdict counts as in a training reward unless the rubric says otherwise.
TRAINING_UNGRADED = "pessimistic"


# --------------------------------------------------------------------------- rubrics


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


def family_of(rubric: Rubric) -> str:
    """Rubric family used to split logged rewards: its category (``stage1/...``), else its id prefix."""
    return rubric.category or rubric.id.split("-")[0]


def programmatic_only(rubric: Rubric) -> Rubric:
    """A copy of ``rubric`` keeping only its programmatic criteria (for verifier-only stages)."""
    kept = tuple(c for c in rubric.criteria if c.kind == "programmatic")
    if not kept:
        raise ValueError(f"rubric {rubric.id!r} has no programmatic criteria")
    return rubric.model_copy(update={"criteria": kept})


def defense_floor(defense: Rubric) -> float:
    """The reward of a response the defense rubric vetoes: its veto floor (``VetoSpec`` default 0.0)."""
    veto = defense.aggregation.veto
    return float(veto.floor) if veto is not None else 0.0


# --------------------------------------------------------------------------- teacher routing


def teacher_selected(request: GradingRequest, fraction: float, seed: int) -> bool:
    """Whether ``request`` is one of the ``fraction`` of samples the teacher grades.

    A hash of (seed, rubric id, conversation, response) decides, so the choice is reproducible and
    independent of batch order and engine.
    """
    if fraction <= 0:
        return False
    if fraction >= 1:
        return True
    key = json.dumps([seed, request.rubric_id, request.conversation, request.response], ensure_ascii=False)
    u = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return u < fraction


def agreement(pairs: Sequence[tuple[bool, bool]]) -> dict[str, float | None]:
    """Agreement of two graders on the same (response, criterion) items.

    Args:
        pairs: ``(self_met, teacher_met)`` for items both graded.

    Returns:
        ``n``, ``agreement`` (fraction equal), ``kappa`` (Cohen's; None when chance agreement is 1,
        i.e. both graders gave one constant answer), ``self_true_rate``, ``teacher_true_rate``;
        rates are None when ``n`` is 0.
    """
    n = len(pairs)
    if not n:
        return {"n": 0, "agreement": None, "kappa": None, "self_true_rate": None, "teacher_true_rate": None}
    po = sum(1 for a, b in pairs if a == b) / n
    ps = sum(1 for a, _ in pairs if a) / n
    pt = sum(1 for _, b in pairs if b) / n
    pe = ps * pt + (1 - ps) * (1 - pt)
    kappa = (po - pe) / (1 - pe) if pe < 1 else None
    return {"n": n, "agreement": po, "kappa": kappa, "self_true_rate": ps, "teacher_true_rate": pt}


@dataclass
class Routed:
    """The verdicts of one request and who gave them.

    Attributes:
        verdicts: one per criterion, in order (what the reward uses).
        teacher: the teacher graded this request (beside the self-grader).
        graded_by: whose verdicts the reward rests on (``teacher`` when they replace the self-grader's).
        pairs: ``(self_met, teacher_met)`` of the items both graded.
    """

    verdicts: list[Verdict]
    teacher: bool = False
    graded_by: Grader = "judge"
    pairs: list[tuple[bool, bool]] = field(default_factory=list)


class TeacherRoutingJudge:
    """A judge that sends a seeded share of the samples to a teacher as well as to the self-grader.

    Every request is graded by ``self_judge``. A ``fraction`` of them, chosen by :func:`teacher_selected`
    (or forced: :meth:`route`'s ``to_teacher``), is also graded by ``teacher``; with ``replace`` the teacher's
    verdict is used for those (the self verdict where the teacher left an item ungraded, counted in
    ``teacher_fallbacks``), otherwise the teacher only measures agreement. Items both graded are kept as
    ``(self_met, teacher_met)`` pairs until :meth:`take_pairs`.

    Args:
        self_judge: the usual grader (the policy grading itself, or the training judge); may be set later.
        teacher: a fixed, stronger judge (any object with ``async grade``), or None.
        fraction: share of samples the teacher grades, in [0, 1].
        replace: whether teacher verdicts replace self verdicts on those samples.
        seed: seed of the sample choice.
    """

    def __init__(
        self, self_judge: Any, teacher: Any | None = None, fraction: float = 0.0, replace: bool = True, seed: int = 0
    ):
        if fraction > 0 and teacher is None:
            raise ValueError("a teacher fraction > 0 needs a teacher judge")
        self.self_judge = self_judge
        self.teacher = teacher
        self.fraction = float(fraction)
        self.replace = replace
        self.seed = seed
        self.name = getattr(self_judge, "name", "self")
        self.teacher_fallbacks = 0
        self.teacher_samples = 0
        self._pairs: list[tuple[bool, bool]] = []

    @property
    def stats(self) -> Any:
        """Counters of the self judge (calls, ungraded, latency); the teacher's are in ``teacher_stats``."""
        return self.self_judge.stats

    @property
    def teacher_stats(self) -> Any:
        return getattr(self.teacher, "stats", None) if self.teacher is not None else None

    def routes_to_teacher(self, request: GradingRequest) -> bool:
        """Whether the teacher grades ``request`` (by :func:`teacher_selected`)."""
        return self.teacher is not None and teacher_selected(request, self.fraction, self.seed)

    async def route(self, request: GradingRequest, to_teacher: bool | None = None) -> Routed:
        """Grade ``request``: the self-grader always, the teacher too when routed there.

        Args:
            request: what to grade.
            to_teacher: the routing decided by the caller (a sample's defense rubric follows its task
                rubric; a row may force a grader); None decides by :meth:`routes_to_teacher`.
        """
        if to_teacher is None:
            to_teacher = self.routes_to_teacher(request)
        own = await self.self_judge.grade(request)
        if not to_teacher or self.teacher is None:
            return Routed(own)
        self.teacher_samples += 1
        theirs = await self.teacher.grade(request)
        out: list[Verdict] = []
        pairs: list[tuple[bool, bool]] = []
        for s, t in zip(own, theirs):
            if s.met is not None and t.met is not None:
                pairs.append((bool(s.met), bool(t.met)))
            if self.replace and not t.ungraded:
                out.append(t)
            else:
                if self.replace:
                    self.teacher_fallbacks += 1
                out.append(s)
        self._pairs += pairs
        return Routed(out, teacher=True, graded_by="teacher" if self.replace else "judge", pairs=pairs)

    async def grade(self, request: GradingRequest) -> list[Verdict]:
        """Self verdicts, or the teacher's where it grades this sample and ``replace`` is on."""
        return (await self.route(request)).verdicts

    def take_pairs(self) -> list[tuple[bool, bool]]:
        """The (self, teacher) pairs collected since the last call, and forget them."""
        pairs, self._pairs = self._pairs, []
        return pairs

    async def aclose(self) -> None:
        for j in (self.self_judge, self.teacher):
            close = getattr(j, "aclose", None)
            if close is not None:
                await close()


# --------------------------------------------------------------------------- scoring


@dataclass
class Sample:
    """One response to score.

    Attributes:
        conversation: the prompt messages (without the response).
        response: the text graded.
        rubric: the task rubric, as training scores it (:func:`training_rubric` applied).
        defense: optional defense rubric graded beside it as a veto (also as trained on).
        prompt_id: the prompt's id, for the rollout record (empty when unknown).
        grader: force this sample to one grader (``teacher`` / ``judge``); None lets the judge route it.
    """

    conversation: list[Message]
    response: str
    rubric: Rubric
    defense: Rubric | None = None
    prompt_id: str = ""
    grader: Grader | None = None


@dataclass
class Scored:
    """The reward of one response and how it was reached.

    Attributes:
        rubric_id, family: the task rubric and its family (:func:`family_of`).
        reward: the training reward.
        task, defense: the task and defense rubrics' results.
        verdicts: the task rubric's verdicts, then the defense rubric's.
        criteria: the criteria those verdicts answer, in the same order.
        teacher: the teacher graded this sample.
        graded_by: whose verdicts the reward rests on (``judge`` or ``teacher``).
        pairs: ``(self_met, teacher_met)`` of the items both graded.
        sample: what was scored.
    """

    rubric_id: str
    family: str
    reward: float
    task: RewardResult
    defense: RewardResult | None = None
    verdicts: list[Verdict] | None = None
    criteria: tuple[Criterion, ...] = ()
    teacher: bool = False
    graded_by: Grader = "judge"
    pairs: list[tuple[bool, bool]] = field(default_factory=list)
    sample: Sample | None = None

    @property
    def defense_vetoed(self) -> bool:
        return bool(self.defense is not None and self.defense.vetoed)

    @property
    def vetoed(self) -> bool:
        return self.task.vetoed or self.defense_vetoed

    @property
    def n_ungraded(self) -> int:
        return self.task.n_ungraded + (self.defense.n_ungraded if self.defense else 0)


def sample_requests(samples: Sequence[Sample]) -> list[GradingRequest]:
    """The grading requests of a batch: each sample's task rubric, then its defense rubric (when it has one)."""
    requests: list[GradingRequest] = []
    for s in samples:
        meta = {"prompt_id": s.prompt_id} if s.prompt_id else {}
        for r in (s.rubric, s.defense):
            if r is not None:
                requests.append(
                    GradingRequest(
                        conversation=list(s.conversation),
                        response=s.response,
                        criteria=r.criteria,
                        rubric_id=r.id,
                        metadata=dict(meta),
                    )
                )
    return requests


def combine(sample: Sample, task: Routed, defense: Routed | None = None) -> Scored:
    """:class:`Scored` of ``sample`` from its graded task (and defense) requests: aggregation and the defense veto.

    Pure: no judge is called.
    """
    result = rubric_reward(sample.rubric, task.verdicts)
    reward = result.reward
    verdicts = list(task.verdicts)
    criteria = tuple(sample.rubric.criteria)
    guard = None
    pairs = list(task.pairs)
    if sample.defense is not None and defense is not None:
        guard = rubric_reward(sample.defense, defense.verdicts)
        verdicts += defense.verdicts
        criteria += tuple(sample.defense.criteria)
        pairs += defense.pairs
        if guard.vetoed:
            reward = defense_floor(sample.defense)
    return Scored(
        rubric_id=sample.rubric.id,
        family=family_of(sample.rubric),
        reward=float(reward),
        task=result,
        defense=guard,
        verdicts=verdicts,
        criteria=criteria,
        teacher=task.teacher,
        graded_by=task.graded_by,
        pairs=pairs,
        sample=sample,
    )


async def _routed(judge: Any, request: GradingRequest, to_teacher: bool | None) -> Routed:
    if isinstance(judge, TeacherRoutingJudge):
        return await judge.route(request, to_teacher)
    return Routed(list(await judge.grade(request)))


async def ascore_samples(judge: Any, samples: Sequence[Sample]) -> list[Scored]:
    """Grade and score ``samples`` on the running event loop, every request of the batch concurrently.

    Args:
        judge: any object with ``async grade(request)``; a :class:`TeacherRoutingJudge` routes each sample
            (its defense rubric follows its task rubric; ``Sample.grader`` forces a grader).
        samples: what to score.

    Returns:
        One :class:`Scored` per sample, in order.
    """
    jobs = []
    for s in samples:
        requests = sample_requests([s])  # the task rubric's request, then the defense rubric's
        to_teacher = None
        if isinstance(judge, TeacherRoutingJudge):
            to_teacher = s.grader == "teacher" if s.grader is not None else judge.routes_to_teacher(requests[0])
        jobs += [_routed(judge, r, to_teacher) for r in requests]
    routed = list(await asyncio.gather(*jobs))
    out: list[Scored] = []
    k = 0
    for s in samples:
        task = routed[k]
        k += 1
        defense = None
        if s.defense is not None:
            defense = routed[k]
            k += 1
        out.append(combine(s, task, defense))
    return out


def score_samples(judge: Any, samples: Sequence[Sample]) -> list[Scored]:
    """:func:`ascore_samples` from synchronous code (on the judge's background event loop)."""
    return run_sync(ascore_samples(judge, samples))


def verdict_counts(pairs: Iterable[tuple[Sequence[Any], Sequence[Any]]]) -> tuple[int, int]:
    """``(verdicts, ungraded)`` over (criteria, verdicts) pairs: the model-judged ones when there are any, else all.

    Programmatic verifiers never time out, so counting them would hide a judge that grades nothing.
    """
    model = [0, 0]
    every = [0, 0]
    for criteria, verdicts in pairs:
        for c, v in zip(criteria, verdicts or ()):
            for acc in (model, every) if c.kind != "programmatic" else (every,):
                acc[0] += 1
                acc[1] += int(v.ungraded)
    n, u = model if model[0] else every
    return n, u


def count_verdicts(scored: Sequence[Scored]) -> tuple[int, int]:
    """``(verdicts, ungraded)`` a batch's rewards rest on (:func:`verdict_counts`), for reward health."""
    return verdict_counts((s.criteria, s.verdicts or ()) for s in scored)


def rollout_record(step: int, scored: Scored) -> dict[str, Any]:
    """The ``rollouts.jsonl`` row of a scored sample (both engines write this; the hacking analysis mines it).

    Args:
        step: the training step the rollout belongs to.
        scored: a result of this module (it carries its :class:`Sample`).
    """
    s = scored.sample
    if s is None:
        raise ValueError("a rollout record needs the Scored's sample")
    return {
        "step": step,
        "prompt": s.conversation[-1]["content"] if s.conversation else "",
        "prompt_id": s.prompt_id,
        "rubric_id": scored.rubric_id,
        "family": scored.family,
        "completion": s.response,
        "reward": scored.reward,
        "task_reward": scored.task.reward,
        "vetoed": scored.vetoed,
        "defense_vetoed": scored.defense_vetoed,
        "per_criterion": scored.task.per_criterion,
        "defense_per_criterion": scored.defense.per_criterion if scored.defense is not None else None,
        "teacher": scored.teacher,
        "graded_by": scored.graded_by,
    }


class RubricScorer:
    """Scores responses against task rubrics looked up by id (TRL's dataset column holds the id).

    Args:
        rubrics: rubric id -> Rubric (task rubrics: bank rubrics and instance rubrics).
        judge: a ``rubricrl.judge`` judge (``RoutingJudge`` from ``build_judge``), or a
            :class:`TeacherRoutingJudge` over one.
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

    def samples(
        self,
        conversations: Sequence[list[Message]],
        responses: Sequence[str],
        rubric_ids: Sequence[str],
        prompt_ids: Sequence[str] | None = None,
    ) -> list[Sample]:
        """The batch as :class:`Sample` objects (rubrics looked up, the defense rubric on each)."""
        if not (len(conversations) == len(responses) == len(rubric_ids)):
            raise ValueError("conversations, responses and rubric_ids differ in length")
        if prompt_ids is not None and len(prompt_ids) != len(rubric_ids):
            raise ValueError("prompt_ids and rubric_ids differ in length")
        ids = [str(p) for p in prompt_ids] if prompt_ids is not None else [""] * len(rubric_ids)
        return [
            Sample(list(conv), resp, self.rubric(rid), self.defense, pid)
            for conv, resp, rid, pid in zip(conversations, responses, rubric_ids, ids)
        ]

    def requests(
        self, conversations: Sequence[list[Message]], responses: Sequence[str], rubric_ids: Sequence[str]
    ) -> list[GradingRequest]:
        """The grading requests of a batch: the task rubric of each response, then its defense rubric."""
        return sample_requests(self.samples(conversations, responses, rubric_ids))

    def score(
        self,
        conversations: Sequence[list[Message]],
        responses: Sequence[str],
        rubric_ids: Sequence[str],
        prompt_ids: Sequence[str] | None = None,
    ) -> list[Scored]:
        """Grade and aggregate; one :class:`Scored` per response, in order."""
        samples = self.samples(conversations, responses, rubric_ids, prompt_ids)
        t0 = time.monotonic()
        out = score_samples(self.judge, samples)
        self.last_latency_s = time.monotonic() - t0
        return out

    async def ascore(
        self,
        conversations: Sequence[list[Message]],
        responses: Sequence[str],
        rubric_ids: Sequence[str],
        prompt_ids: Sequence[str] | None = None,
    ) -> list[Scored]:
        """:meth:`score` on the running event loop: every request of the batch graded concurrently."""
        samples = self.samples(conversations, responses, rubric_ids, prompt_ids)
        t0 = time.monotonic()
        out = await ascore_samples(self.judge, samples)
        self.last_latency_s = time.monotonic() - t0
        return out
