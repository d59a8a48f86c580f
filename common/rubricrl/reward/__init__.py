"""Reward aggregation: verdicts on rubric criteria -> a scalar reward.

Entry points: :func:`aggregate` (criteria, verdicts, AggregationSpec) and :func:`rubric_reward`.
Registered aggregators: ``weighted_mean``, ``points_ratio`` (alias ``healthbench``), ``saturation``,
``interaction``; shaping (:mod:`.shaping`) and veto (:mod:`.veto`) are applied by :func:`aggregate`.
"""

from rubricrl.reward import aggregators as _aggregators  # noqa: F401  (registers the built-ins)
from rubricrl.reward.aggregators import (
    criterion_value,
    criterion_weight,
    interaction,
    points_ratio,
    saturate,
    saturation,
    weighted_mean,
)
from rubricrl.reward.interfaces import Aggregator, RewardResult
from rubricrl.reward.registry import (
    AGGREGATORS,
    AggregationError,
    aggregate,
    check_params,
    check_spec,
    get_aggregator,
    pair_verdicts,
    register,
    rubric_reward,
)
from rubricrl.reward.shaping import SHAPERS, check_shape, shape_value
from rubricrl.reward.veto import apply_veto, critical_failures

__all__ = [
    "AGGREGATORS",
    "AggregationError",
    "Aggregator",
    "RewardResult",
    "SHAPERS",
    "aggregate",
    "apply_veto",
    "check_params",
    "check_shape",
    "check_spec",
    "criterion_value",
    "criterion_weight",
    "critical_failures",
    "get_aggregator",
    "interaction",
    "pair_verdicts",
    "points_ratio",
    "register",
    "rubric_reward",
    "saturate",
    "saturation",
    "shape_value",
    "weighted_mean",
]
