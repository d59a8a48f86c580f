"""Registered aggregators: (criteria, verdicts, params) -> RewardResult.

Notation used in the docstrings. For criterion ``i``: ``v_i`` = :func:`criterion_value` in [0, 1]
(for a negative criterion, 1 = the undesirable behaviour is present); ``w_i`` = its weight, or
``|points|`` when the criterion has points (the schema ignores ``weight`` then); ``P`` / ``N`` = the
graded positive / negative criteria (after the ``ungraded`` policy: ``exclude`` drops ungraded
criteria, ``not_met`` keeps them with ``v = 0``); ``W+ = sum_{i in P} w_i``.

Every aggregator puts ``criterion_value`` of every criterion (``None`` when ungraded) in
``per_criterion`` and the number of ungraded verdicts in ``n_ungraded``. When nothing usable is left
(zero denominator), the reward is ``params["empty_reward"]`` (default 0.0) and
``components["empty_reward"]`` records it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from rubricrl.judge.interfaces import Verdict
from rubricrl.reward.interfaces import RewardResult
from rubricrl.reward.registry import AggregationError, get_aggregator, check_params, pair_verdicts, register
from rubricrl.rubrics.schema import Criterion


def criterion_value(criterion: Criterion, verdict: Verdict) -> float | None:
    """Normalised value of one verdict, in [0, 1]; ``None`` when ungraded.

    * binary criterion: ``1.0`` if ``met`` else ``0.0``; a binary verdict carrying only a ``score``
      (e.g. a programmatic fraction such as matched / N) gives that score clamped to [0, 1];
    * tiered criterion: ``criterion.normalise(score)``; judged with only met / not met: 1 / 0.

    For a negative criterion the value means "undesirable behaviour present" (1 = present).
    """
    if verdict.ungraded:
        return None
    if criterion.binary:
        if verdict.met is not None:
            return 1.0 if verdict.met else 0.0
        return min(1.0, max(0.0, float(verdict.score)))  # type: ignore[arg-type]
    if verdict.score is not None:
        return criterion.normalise(float(verdict.score))
    return 1.0 if verdict.met else 0.0


def criterion_weight(criterion: Criterion) -> float:
    """Weight in weighted aggregations: ``|points|`` for points criteria, else ``weight``."""
    return abs(criterion.points) if criterion.points is not None else criterion.weight


def signed_points(criterion: Criterion) -> float:
    """Signed points: ``points`` if set, else ``-weight`` for negative and ``+weight`` for positive criteria."""
    if criterion.points is not None:
        return float(criterion.points)
    return -criterion.weight if criterion.negative else criterion.weight


# --------------------------------------------------------------------------- shared helpers


@dataclass(frozen=True)
class Item:
    """A criterion kept for aggregation with its effective value (after the ungraded policy)."""

    criterion: Criterion
    value: float

    @property
    def weight(self) -> float:
        return criterion_weight(self.criterion)


@dataclass
class Prepared:
    """Values of all criteria and the items an aggregator works on."""

    per_criterion: dict[str, float | None]
    n_ungraded: int
    items: list[Item]

    @property
    def positive(self) -> list[Item]:
        return [it for it in self.items if not it.criterion.negative]

    @property
    def negative(self) -> list[Item]:
        return [it for it in self.items if it.criterion.negative]


def _number(params: Mapping[str, Any], key: str, default: float, agg: str) -> float:
    x = params.get(key, default)
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise AggregationError(f"{agg}: {key!r} must be a finite number, got {x!r}")
    return float(x)


def _flag(params: Mapping[str, Any], key: str, agg: str) -> bool:
    x = params.get(key, False)
    if not isinstance(x, bool):
        raise AggregationError(f"{agg}: {key!r} must be true or false, got {x!r}")
    return x


def prepare(criteria: Sequence[Criterion], verdicts: Sequence[Verdict], params: Mapping[str, Any]) -> Prepared:
    """Pair verdicts, compute values and apply the ``ungraded`` policy."""
    paired = pair_verdicts(criteria, verdicts)
    drop = params.get("ungraded", "exclude") == "exclude"
    per: dict[str, float | None] = {}
    items: list[Item] = []
    n_ungraded = 0
    for c, v in zip(criteria, paired):
        x = criterion_value(c, v)
        per[c.id] = x
        if x is None:
            n_ungraded += 1
            if drop:
                continue
            x = 0.0
        items.append(Item(c, x))
    return Prepared(per, n_ungraded, items)


def empty_result(prep: Prepared, params: Mapping[str, Any]) -> RewardResult:
    """Result when nothing usable is left: ``empty_reward``, recorded in components."""
    r = float(params.get("empty_reward", 0.0))
    return RewardResult(r, prep.per_criterion, {"empty_reward": r}, n_ungraded=prep.n_ungraded)


def weighted(items: Sequence[Item]) -> float:
    """``sum w_i v_i / sum w_i`` over ``items`` (caller guarantees a positive denominator)."""
    return sum(it.weight * it.value for it in items) / sum(it.weight for it in items)


def penalty(prep: Prepared) -> tuple[float, float]:
    """``(penalty, W+)`` with ``penalty = sum_{j in N} w_j v_j / W+``.

    With no positive criterion at all (a pure penalty rubric, e.g. a hacking-pattern checklist) the
    penalty is normalised by ``W- = sum_{j in N} w_j`` instead and ``W+`` is returned as 0.
    """
    w_pos = sum(it.weight for it in prep.positive)
    pen = sum(it.weight * it.value for it in prep.negative)
    if w_pos > 0:
        return pen / w_pos, w_pos
    w_neg = sum(it.weight for it in prep.negative)
    return (pen / w_neg if w_neg > 0 else 0.0), 0.0


def _clipped(x: float, clip: bool) -> float:
    return min(1.0, max(0.0, x)) if clip else x


def _has_positive_criterion(criteria: Sequence[Criterion]) -> bool:
    return any(not c.negative for c in criteria)


# --------------------------------------------------------------------------- weighted_mean


def _validate_weighted_mean(params: Mapping[str, Any]) -> None:
    _flag(params, "clip", "weighted_mean")


@register("weighted_mean", params=("clip",), validate=_validate_weighted_mean)
def weighted_mean(criteria: Sequence[Criterion], verdicts: Sequence[Verdict], params: Mapping[str, Any]) -> RewardResult:
    """Weighted mean of positive criteria minus a weighted penalty for negative ones (Rubicon's base reward).

    ``reward = sum_{i in P} w_i v_i / W+  -  sum_{j in N} w_j v_j / W+``

    The penalty shares the positive denominator, so with points criteria (``w = |points|``) this equals
    :func:`points_ratio`. Range: ``[-sum_N w / W+, 1]``; ``clip: true`` clamps to [0, 1].
    A pure penalty rubric (no positive criterion at all) scores ``1 - sum_N w_j v_j / sum_N w_j``.
    Positive criteria present but all ungraded and excluded: ``empty_reward``.

    Params:
        clip (bool, default false), ungraded, empty_reward.

    Components: ``base`` (positive part), ``penalty``, ``pre_clip``.
    """
    prep = prepare(criteria, verdicts, params)
    clip = _flag(params, "clip", "weighted_mean")
    pos = prep.positive
    if pos:
        base = weighted(pos)
    elif prep.negative and not _has_positive_criterion(criteria):
        base = 1.0
    else:
        return empty_result(prep, params)
    pen, _ = penalty(prep)
    raw = base - pen
    comps = {"base": base, "penalty": pen, "pre_clip": raw}
    return RewardResult(_clipped(raw, clip), prep.per_criterion, comps, n_ungraded=prep.n_ungraded)


# --------------------------------------------------------------------------- points_ratio


@register("points_ratio", aliases=("healthbench",))
def points_ratio(criteria: Sequence[Criterion], verdicts: Sequence[Verdict], params: Mapping[str, Any]) -> RewardResult:
    """HealthBench per-example score: points of met items over positive points. Not clipped.

    ``reward = sum_{i in P u N} p_i v_i / sum_{i in P} p_i``

    with ``p_i`` the signed points (a weighted criterion counts ``+weight``, or ``-weight`` when
    negative; a tiered one earns ``p_i`` times its normalised value). For binary items this is
    ``sum(points of met items) / sum(points of items with points > 0)``, which can be negative
    (the HealthBench reference clips only the mean over examples). With ``ungraded: exclude``
    ungraded items leave both sums; if no positive item remains: ``empty_reward``.

    Params:
        ungraded, empty_reward.

    Components: ``earned`` (numerator), ``possible`` (denominator).
    """
    prep = prepare(criteria, verdicts, params)
    possible = sum(signed_points(it.criterion) for it in prep.items if signed_points(it.criterion) > 0)
    if not possible > 0:
        return empty_result(prep, params)
    earned = sum(signed_points(it.criterion) * it.value for it in prep.items)
    comps = {"earned": earned, "possible": possible}
    return RewardResult(earned / possible, prep.per_criterion, comps, n_ungraded=prep.n_ungraded)
