"""The rubric schema: :class:`Rubric`, :class:`Criterion`, :class:`Tier`, :class:`AggregationSpec`, :class:`VetoSpec`.

The models are defined in :mod:`rubricrl.types`, the bottom layer that the judge and reward packages import
too (so neither imports this package, whose loader validates aggregations against the reward registry).
This module keeps the public ``rubricrl.rubrics.schema`` names; see :mod:`rubricrl.types` for the semantics.
"""

from rubricrl.types import AggregationSpec, Criterion, CriterionKind, Rubric, Scope, Tier, VetoSpec, bank_hash

__all__ = ["AggregationSpec", "Criterion", "CriterionKind", "Rubric", "Scope", "Tier", "VetoSpec", "bank_hash"]
