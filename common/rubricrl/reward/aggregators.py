"""Registered aggregators: (criteria, verdicts, params) -> RewardResult.

Notation used in the docstrings. For criterion ``i``: ``v_i`` = :func:`criterion_value` in [0, 1]
(for a negative criterion, 1 = the undesirable behaviour is present); ``w_i`` = its weight, or
``|points|`` when the criterion has points (the schema ignores ``weight`` then); ``P`` / ``N`` = the
graded positive / negative criteria (after the ``ungraded`` policy, below); ``W+ = sum_{i in P} w_i``.

The ``ungraded`` policy (a parameter of every aggregator) says what an ungraded verdict counts as:

* ``exclude`` (the default of :func:`rubricrl.reward.aggregate`, and HealthBench scoring's, for parity
  with simple-evals): the criterion leaves numerator and denominator;
* ``not_met``: kept with ``v = 0`` (a positive item not met; a negative item's behaviour absent, MrlX's
  rule);
* ``pessimistic``: kept at its worst value: a positive item not met (``v = 0``), a negative (penalty)
  item present (``v = 1``); and an ungraded ``critical`` criterion vetoes (:mod:`rubricrl.reward.veto`).
  For the monotone aggregators (``weighted_mean``, ``points_ratio``, ``saturation``, and
  ``interaction`` with every ``gamma >= 0``) the reward is then the lowest any verdict on the ungraded
  items could have given: a verdict the judge failed to give can never raise a reward. It is the
  default for *training* rewards (:mod:`rubricrl.train.rewards`), where a policy would otherwise learn
  to make penalty items ungraded (e.g. by padding past the judge's context).

Every aggregator puts ``criterion_value`` of every criterion (``None`` when ungraded) in
``per_criterion`` and the number of ungraded verdicts in ``n_ungraded``. When nothing usable is left
(zero denominator), the reward is ``params["empty_reward"]`` (default 0.0) and
``components["empty_reward"]`` records it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rubricrl.reward.interfaces import RewardResult
from rubricrl.reward.registry import (
    AGGREGATORS,
    AggregationError,
    check_params,
    get_aggregator,
    pair_verdicts,
    register,
)
from rubricrl.types import Criterion, Verdict


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


def worst_value(criterion: Criterion) -> float:
    """The value of ``criterion``'s worst verdict: 1 (present) for a negative criterion, else 0 (not met)."""
    return 1.0 if criterion.negative else 0.0


def prepare(criteria: Sequence[Criterion], verdicts: Sequence[Verdict], params: Mapping[str, Any]) -> Prepared:
    """Pair verdicts, compute values and apply the ``ungraded`` policy (see the module docstring).

    ``per_criterion`` keeps ``None`` for ungraded criteria whatever the policy; only the items used by
    the aggregator carry the policy's value.
    """
    paired = pair_verdicts(criteria, verdicts)
    policy = params.get("ungraded", "exclude")
    drop = policy == "exclude"
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
            x = worst_value(c) if policy == "pessimistic" else 0.0
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
def weighted_mean(
    criteria: Sequence[Criterion], verdicts: Sequence[Verdict], params: Mapping[str, Any]
) -> RewardResult:
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


# --------------------------------------------------------------------------- saturation


def saturate(s: float, k: float) -> float:
    """``g(s) = (1 - e^(-k s)) / (1 - e^(-k))``: concave, increasing, ``g(0) = 0``, ``g(1) = 1``."""
    return math.expm1(-k * s) / math.expm1(-k)


def _saturation_k(params: Mapping[str, Any]) -> float:
    k = _number(params, "k", 3.0, "saturation")
    if not k > 0:
        raise AggregationError(f"saturation: 'k' must be > 0, got {k}")
    return k


def _validate_saturation(params: Mapping[str, Any]) -> None:
    _saturation_k(params)
    _flag(params, "clip", "saturation")


def groups(items: Sequence[Item]) -> dict[str, list[Item]]:
    """Items by ``criterion.group`` (the ``dimension``, else the id), in first-seen order."""
    out: dict[str, list[Item]] = {}
    for it in items:
        out.setdefault(it.criterion.group, []).append(it)
    return out


@register("saturation", params=("k", "clip"), validate=_validate_saturation)
def saturation(criteria: Sequence[Criterion], verdicts: Sequence[Verdict], params: Mapping[str, Any]) -> RewardResult:
    """Saturation-aware aggregation: diminishing returns within each dimension.

    Positive criteria are grouped by dimension ``d`` (``criterion.group``). With
    ``s_d = sum_{i in d} w_i v_i / W_d``, ``W_d = sum_{i in d} w_i`` and
    ``g(s) = (1 - e^(-k s)) / (1 - e^(-k))``:

    ``reward = sum_d W_d g(s_d) / sum_d W_d  -  sum_{j in N} w_j v_j / W+``

    ``g`` is concave, so raising a dimension from 0.8 to 1.0 adds less than from 0.0 to 0.2, and for
    equal weights spreading an improvement across dimensions beats concentrating it in one. ``k -> 0``
    approaches :func:`weighted_mean`. Negative criteria are a penalty exactly as in ``weighted_mean``
    (pure penalty rubric and all-ungraded cases too). A dimension whose criteria are all ungraded and
    excluded leaves numerator and denominator.

    Params:
        k (float > 0, default 3), clip (bool, default false), ungraded, empty_reward.

    Components: ``base`` (saturated positive part), ``penalty``, ``pre_clip``, ``s:<dimension>``.
    """
    prep = prepare(criteria, verdicts, params)
    k = _saturation_k(params)
    clip = _flag(params, "clip", "saturation")
    comps: dict[str, float] = {}
    pos = prep.positive
    if pos:
        num = den = 0.0
        for d, members in groups(pos).items():
            s_d, w_d = weighted(members), sum(it.weight for it in members)
            comps[f"s:{d}"] = s_d
            num += w_d * saturate(s_d, k)
            den += w_d
        base = num / den
    elif prep.negative and not _has_positive_criterion(criteria):
        base = 1.0
    else:
        return empty_result(prep, params)
    pen, _ = penalty(prep)
    comps.update({"base": base, "penalty": pen, "pre_clip": base - pen})
    return RewardResult(_clipped(base - pen, clip), prep.per_criterion, comps, n_ungraded=prep.n_ungraded)


# --------------------------------------------------------------------------- interaction

_INHERITED = ("ungraded", "empty_reward", "shape")


def _pairs(params: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    raw = params.get("pairs")
    if not isinstance(raw, (list, tuple)) or not raw:
        raise AggregationError(f"interaction: 'pairs' must be a non-empty list of {{a, b, gamma}}, got {raw!r}")
    out = []
    for n, p in enumerate(raw):
        if not isinstance(p, Mapping) or set(p) != {"a", "b", "gamma"}:
            raise AggregationError(f"interaction: pairs[{n}] must have exactly the keys a, b, gamma, got {p!r}")
        if not all(isinstance(p[x], str) and p[x] for x in ("a", "b")):
            raise AggregationError(f"interaction: pairs[{n}]: a and b must be criterion ids or dimension names")
        out.append((p["a"], p["b"], _number(p, "gamma", 0.0, f"interaction pairs[{n}]")))
    return out


def _base_spec(params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Base aggregator name and its params (``ungraded`` / ``empty_reward`` inherited)."""
    base = params.get("base", "weighted_mean")
    if base == "interaction":
        raise AggregationError("interaction: 'base' cannot be 'interaction'")
    if base not in AGGREGATORS:
        known = ", ".join(sorted(AGGREGATORS))
        raise AggregationError(f"interaction: 'base' {base!r} is not a registered aggregator; known: {known}")
    bp = params.get("base_params", {})
    if not isinstance(bp, Mapping):
        raise AggregationError(f"interaction: 'base_params' must be a mapping, got {bp!r}")
    clash = sorted(set(bp) & set(_INHERITED))
    if clash:
        names = ", ".join(map(repr, clash))
        raise AggregationError(f"interaction: set {names} on interaction itself, not in base_params")
    merged = {**bp, **{key: params[key] for key in ("ungraded", "empty_reward") if key in params}}
    check_params(base, merged)
    return base, merged


def _validate_interaction(params: Mapping[str, Any]) -> None:
    _pairs(params)
    _base_spec(params)
    _flag(params, "clip", "interaction")


def _members(criteria: Sequence[Criterion], ref: str) -> list[Criterion]:
    """Criteria a pair reference names: the dimension ``ref`` if any criterion has it, else the criterion ``ref``."""
    found = [c for c in criteria if c.group == ref] or [c for c in criteria if c.id == ref]
    if not found:
        raise AggregationError(f"interaction: {ref!r} is neither a criterion id nor a dimension of this rubric")
    return found


def _validate_interaction_criteria(criteria: Sequence[Criterion], params: Mapping[str, Any]) -> None:
    for a, b, _ in _pairs(params):
        _members(criteria, a)
        _members(criteria, b)


def quality(it: Item) -> float:
    """How good an item is, in [0, 1]: ``v`` for a positive criterion, ``1 - v`` for a negative one."""
    return 1.0 - it.value if it.criterion.negative else it.value


def group_value(prep: Prepared, criteria: Sequence[Criterion], ref: str) -> float | None:
    """``s_ref``: weighted mean of :func:`quality` over the kept members of ``ref``; ``None`` if none is kept."""
    ids = {c.id for c in _members(criteria, ref)}
    kept = [it for it in prep.items if it.criterion.id in ids]
    if not kept:
        return None
    return sum(it.weight * quality(it) for it in kept) / sum(it.weight for it in kept)


@register(
    "interaction",
    params=("pairs", "base", "base_params", "clip"),
    validate=_validate_interaction,
    validate_criteria=_validate_interaction_criteria,
)
def interaction(criteria: Sequence[Criterion], verdicts: Sequence[Verdict], params: Mapping[str, Any]) -> RewardResult:
    """Pairwise interaction modelling: a base reward plus explicit synergy / antagonism terms.

    ``reward = base + sum_{(a, b, gamma) in pairs} gamma * s_a * s_b``

    ``s_x`` is the value of reference ``x`` in [0, 1]: the weighted mean of ``v`` (positive criteria) or
    ``1 - v`` (negative criteria: behaviour absent is good) over its members. A reference names a
    dimension when some criterion has it as ``group``, else a criterion id; anything else is an error.
    ``gamma > 0`` (synergy) adds reward only when both are high; ``gamma < 0`` (antagonism) removes
    reward when both are high. The product is bilinear, so
    ``r(1, 1) - r(1, 0) - r(0, 1) + r(0, 0) = gamma``.
    A pair with a reference whose members are all ungraded and excluded contributes nothing.

    Params:
        pairs (list of {a, b, gamma}, required), base (aggregator name, default ``weighted_mean``),
        base_params (its params; ``ungraded`` and ``empty_reward`` are inherited), clip (bool), ungraded,
        empty_reward.

    Components: ``base``, ``interaction``, ``pre_clip``, ``interaction_skipped``, ``base.<name>``.
    If the base has nothing to score (``empty_reward``), that result is returned as is.
    """
    pairs = _pairs(params)
    base_name, base_params = _base_spec(params)
    clip = _flag(params, "clip", "interaction")
    base = get_aggregator(base_name)(criteria, verdicts, base_params)
    if "empty_reward" in base.components:
        return base
    prep = prepare(criteria, verdicts, params)
    term, skipped = 0.0, 0
    for a, b, gamma in pairs:
        s_a, s_b = group_value(prep, criteria, a), group_value(prep, criteria, b)
        if s_a is None or s_b is None:
            skipped += 1
            continue
        term += gamma * s_a * s_b
    raw = base.reward + term
    comps = {f"base.{key}": val for key, val in base.components.items()}
    comps.update({"base": base.reward, "interaction": term, "pre_clip": raw, "interaction_skipped": float(skipped)})
    return RewardResult(_clipped(raw, clip), prep.per_criterion, comps, n_ungraded=prep.n_ungraded)
