"""Aggregator registry and the reward entry points.

Pipeline of :func:`aggregate` (the one entry point training and evaluation share):

1. pair verdicts to criteria by ``criterion_id`` (a missing verdict is ungraded; a verdict for an
   unknown criterion or two verdicts for one criterion are errors);
2. run the aggregator named by ``spec.name`` with ``spec.params`` (every key checked: a typo must not
   silently change a reward);
3. optional shaping, ``params["shape"] = {"name": ..., ...}`` (see :mod:`rubricrl.reward.shaping`);
   the aggregator's value is clamped to [0, 1] before shaping;
4. veto by critical criteria, last (see :mod:`rubricrl.reward.veto`).

Parameters every aggregator accepts:

* ``ungraded``: ``exclude`` (default; an ungraded criterion leaves numerator and denominator),
  ``not_met`` (counted as 0: not met, or for a negative criterion, behaviour absent) or ``pessimistic``
  (counted at its worst: a positive criterion not met, a negative one present, a critical one vetoes;
  the default of training rewards, :mod:`rubricrl.train.rewards`); see :mod:`rubricrl.reward.aggregators`;
* ``empty_reward``: reward when nothing usable is left (everything ungraded, zero denominator);
  default 0.0. It is returned as is: not shaped (veto still applies);
* ``shape``: a shaping spec, applied by :func:`aggregate`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rubricrl.errors import UserError
from rubricrl.reward.interfaces import Aggregator, RewardResult
from rubricrl.reward.shaping import check_shape, shape_value
from rubricrl.reward.veto import apply_veto
from rubricrl.types import AggregationSpec, Criterion, Rubric, Verdict

log = logging.getLogger(__name__)

COMMON_PARAMS: frozenset[str] = frozenset({"ungraded", "empty_reward", "shape"})
UNGRADED_POLICIES: tuple[str, ...] = ("exclude", "not_met", "pessimistic")


class AggregationError(UserError, ValueError):
    """A bad aggregation spec (unknown aggregator, unknown or invalid parameter) or mismatched verdicts."""


ParamValidator = Callable[[Mapping[str, Any]], None]
CriteriaValidator = Callable[[Sequence[Criterion], Mapping[str, Any]], None]


@dataclass(frozen=True)
class AggregatorEntry:
    """A registered aggregator.

    Attributes:
        name: canonical registered name.
        fn: the aggregator, ``fn(criteria, verdicts, params) -> RewardResult``.
        params: parameter names it accepts besides :data:`COMMON_PARAMS`.
        validate: raises :class:`AggregationError` on invalid parameter values (no criteria needed).
        validate_criteria: raises when parameters do not fit a set of criteria (e.g. unknown ids).
    """

    name: str
    fn: Aggregator
    params: frozenset[str]
    validate: ParamValidator | None = None
    validate_criteria: CriteriaValidator | None = None

    @property
    def allowed(self) -> frozenset[str]:
        return self.params | COMMON_PARAMS


AGGREGATORS: dict[str, AggregatorEntry] = {}
"""Registered aggregators by name (aliases map to the same entry)."""


def register(
    name: str,
    *,
    params: Sequence[str] = (),
    aliases: Sequence[str] = (),
    validate: ParamValidator | None = None,
    validate_criteria: CriteriaValidator | None = None,
) -> Callable[[Aggregator], Aggregator]:
    """Decorator registering an aggregator under ``name`` (and ``aliases``).

    Args:
        name: registered name used in ``AggregationSpec.name``.
        params: accepted parameter names besides ``ungraded``, ``empty_reward`` and ``shape``.
        aliases: other names for the same aggregator.
        validate: checks parameter values; raises :class:`AggregationError`.
        validate_criteria: checks parameters against the criteria they will be applied to.

    Raises:
        ValueError: a name is already registered.
    """

    def deco(fn: Aggregator) -> Aggregator:
        entry = AggregatorEntry(name, fn, frozenset(params), validate, validate_criteria)
        for n in (name, *aliases):
            if n in AGGREGATORS:
                raise ValueError(f"aggregator {n!r} is already registered")
            AGGREGATORS[n] = entry
        return fn

    return deco


def _entry(name: str) -> AggregatorEntry:
    try:
        return AGGREGATORS[name]
    except KeyError:
        known = ", ".join(sorted(AGGREGATORS)) or "(none registered)"
        raise AggregationError(f"unknown aggregator {name!r}; known aggregators: {known}") from None


def get_aggregator(name: str) -> Aggregator:
    """Return the aggregator registered as ``name``.

    Raises:
        AggregationError: unknown name; the message lists the known names.
    """
    return _entry(name).fn


def check_params(name: str, params: Mapping[str, Any], criteria: Sequence[Criterion] | None = None) -> None:
    """Validate ``params`` for aggregator ``name``; with ``criteria``, also check they fit them.

    Raises:
        AggregationError: unknown aggregator, unknown parameter, or an invalid value.
    """
    entry = _entry(name)
    if not isinstance(params, Mapping):
        raise AggregationError(f"aggregation params must be a mapping, got {type(params).__name__}")
    unknown = sorted(set(params) - entry.allowed)
    if unknown:
        raise AggregationError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for aggregator {name!r}; "
            f"accepted: {', '.join(sorted(entry.allowed))}"
        )
    ungraded = params.get("ungraded", "exclude")
    if ungraded not in UNGRADED_POLICIES:
        raise AggregationError(f"{name}: 'ungraded' must be one of {list(UNGRADED_POLICIES)}, got {ungraded!r}")
    empty = params.get("empty_reward", 0.0)
    if isinstance(empty, bool) or not isinstance(empty, (int, float)):
        raise AggregationError(f"{name}: 'empty_reward' must be a number, got {empty!r}")
    if "shape" in params:
        try:
            check_shape(params["shape"])
        except ValueError as e:
            raise AggregationError(f"{name}: {e}") from None
    if entry.validate is not None:
        entry.validate(params)
    if criteria is not None and entry.validate_criteria is not None:
        entry.validate_criteria(criteria, params)


def check_spec(spec: AggregationSpec, criteria: Sequence[Criterion] | None = None) -> str | None:
    """Check an aggregation spec at rubric load time.

    Args:
        spec: the rubric's aggregation.
        criteria: the rubric's criteria, to also check references such as interaction pairs.

    Returns:
        ``None`` when the spec is valid, else a one-line message saying what is wrong.
    """
    try:
        check_params(spec.name, spec.params, criteria)
    except AggregationError as e:
        return e.message
    return None


def pair_verdicts(criteria: Sequence[Criterion], verdicts: Sequence[Verdict]) -> list[Verdict]:
    """Align verdicts to criteria by ``criterion_id``; a missing verdict becomes an ungraded one.

    Raises:
        AggregationError: a verdict names no criterion of the rubric, or a criterion has two verdicts.
    """
    ids = {c.id for c in criteria}
    by_id: dict[str, Verdict] = {}
    for v in verdicts:
        if v.criterion_id not in ids:
            raise AggregationError(f"verdict for unknown criterion {v.criterion_id!r}")
        if v.criterion_id in by_id:
            raise AggregationError(f"two verdicts for criterion {v.criterion_id!r}")
        by_id[v.criterion_id] = v
    return [by_id.get(c.id) or Verdict(criterion_id=c.id, error="missing verdict") for c in criteria]


def aggregate(criteria: Sequence[Criterion], verdicts: Sequence[Verdict], spec: AggregationSpec) -> RewardResult:
    """Turn verdicts into a reward: aggregator, then shaping, then veto.

    Args:
        criteria: the rubric's criteria.
        verdicts: one verdict per criterion, in any order; missing ones count as ungraded.
        spec: aggregator name, parameters and veto settings.

    Returns:
        The reward with ``per_criterion`` values and ``components`` (``base``, ``pre_shape``,
        ``shaped``, ``pre_veto`` ... where they apply).

    Raises:
        AggregationError: bad spec or mismatched verdicts.
    """
    check_params(spec.name, spec.params, criteria)
    paired = pair_verdicts(criteria, verdicts)
    result = _entry(spec.name).fn(criteria, paired, spec.params)
    shape = spec.params.get("shape")
    if shape is not None and "empty_reward" not in result.components:
        result.components["pre_shape"] = result.reward
        result.reward = shape_value(result.reward, shape)
        result.components["shaped"] = result.reward
    return apply_veto(criteria, result, spec.veto, ungraded=spec.params.get("ungraded", "exclude"))


def rubric_reward(rubric: Rubric, verdicts: Sequence[Verdict]) -> RewardResult:
    """Reward of one response under ``rubric``, using ``rubric.aggregation``."""
    return aggregate(rubric.criteria, verdicts, rubric.aggregation)
