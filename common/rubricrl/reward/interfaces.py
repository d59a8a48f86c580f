"""The aggregation boundary: (criteria, verdicts) -> reward.

Aggregators are pure functions registered by name (``rubricrl.reward.registry``). Each returns a
``RewardResult`` holding the scalar and the per-criterion vector, so training logs and evaluation
metrics see the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rubricrl.types import Criterion, Verdict


@dataclass
class RewardResult:
    """A reward and how it was reached.

    Attributes:
        reward: the scalar used for training.
        per_criterion: criterion id -> normalised value in [0, 1] (binary: 1 met / 0 not met;
            tiered: tier score mapped to [0, 1]); ``None`` for ungraded.
        components: named intermediate quantities (e.g. ``base``, ``interaction``, ``shaped``).
        vetoed: a critical criterion failed and the reward was set to the veto floor.
        n_ungraded: how many verdicts were ungraded.
    """

    reward: float
    per_criterion: dict[str, float | None] = field(default_factory=dict)
    components: dict[str, float] = field(default_factory=dict)
    vetoed: bool = False
    n_ungraded: int = 0


Aggregator = Callable[[Sequence[Criterion], Sequence[Verdict], Mapping[str, Any]], RewardResult]
