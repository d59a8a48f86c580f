"""Veto by critical criteria (Rubicon: failing a critical dimension nullifies the whole reward).

Applied last by :func:`rubricrl.reward.aggregate`, after aggregation and shaping. For each criterion
with ``critical: true`` and its value ``v`` (``RewardResult.per_criterion``):

* positive criterion fails when ``v < threshold``;
* negative criterion fails when ``v >= threshold`` (the undesirable behaviour is present);
* ungraded (``v is None``): under the aggregation's ``ungraded: pessimistic`` it takes its worst value
  (positive: 0, negative: 1), so it fails (for any ``threshold`` in (0, 1]) whatever ``on_ungraded``
  says: a verdict the judge failed to give never lifts a veto. Under ``exclude`` / ``not_met`` it fails
  only when ``on_ungraded == "veto"``.

If any fails: ``reward = floor``, ``vetoed = True``, whatever the rest. ``components`` gets
``pre_veto`` (the reward before the veto) and ``n_vetoes`` (how many critical criteria failed).

A rubric that marks criteria critical but sets no ``veto`` spec uses ``VetoSpec()`` defaults
(floor 0.0, threshold 0.5, on_ungraded ignore): a ``critical`` flag is never silently ignored. Training
rewards use ``ungraded: pessimistic`` by default (:mod:`rubricrl.train.rewards`), so there an ungraded
critical criterion vetoes.
"""

from __future__ import annotations

from collections.abc import Sequence

from rubricrl.reward.interfaces import RewardResult
from rubricrl.types import Criterion, VetoSpec


def critical_failures(
    criteria: Sequence[Criterion], values: dict[str, float | None], veto: VetoSpec, ungraded: str = "exclude"
) -> list[str]:
    """Ids of critical criteria that fail under ``veto``, in rubric order.

    Args:
        criteria: the rubric's criteria.
        values: ``RewardResult.per_criterion`` (``None``: ungraded).
        veto: veto settings.
        ungraded: the aggregation's ``ungraded`` policy (``pessimistic``: an ungraded one takes its worst value).
    """
    failed: list[str] = []
    for c in criteria:
        if not c.critical:
            continue
        v = values.get(c.id)
        if v is None and ungraded == "pessimistic":
            v = 1.0 if c.negative else 0.0
        if v is None:
            fails = veto.on_ungraded == "veto"
        elif c.negative:
            fails = v >= veto.threshold
        else:
            fails = v < veto.threshold
        if fails:
            failed.append(c.id)
    return failed


def apply_veto(
    criteria: Sequence[Criterion], result: RewardResult, veto: VetoSpec | None, ungraded: str = "exclude"
) -> RewardResult:
    """Set the reward to ``veto.floor`` when a critical criterion fails (see module docstring).

    Args:
        criteria: the rubric's criteria.
        result: the aggregated (and shaped) reward; modified in place and returned.
        veto: veto settings; ``None`` uses ``VetoSpec()`` defaults.
        ungraded: the aggregation's ``ungraded`` policy.
    """
    if not any(c.critical for c in criteria):
        return result
    veto = veto or VetoSpec()
    failed = critical_failures(criteria, result.per_criterion, veto, ungraded)
    if failed:
        result.components["pre_veto"] = result.reward
        result.components["n_vetoes"] = float(len(failed))
        result.reward = float(veto.floor)
        result.vetoed = True
    return result
