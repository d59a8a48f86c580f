"""Training rewards: the names the stages import, from the one scorer (:mod:`rubricrl.reward.scorer`).

Nothing scores here. :class:`RubricScorer` (task rubrics by id, the defense veto, teacher routing through
:class:`~rubricrl.reward.scorer.TeacherRoutingJudge`), :class:`Scored`, :func:`training_rubric` (the
pessimistic ungraded default of training rewards), :func:`programmatic_only` and :func:`family_of` live in
:mod:`rubricrl.reward.scorer`, which TRL's reward functions (:mod:`rubricrl.train.trl_adapter`) and NeMo RL's
environment (:mod:`rubricrl.train.nemo_rl_env`) both call.
"""

from __future__ import annotations

from rubricrl.reward.scorer import (
    TRAINING_UNGRADED,
    RubricScorer,
    Sample,
    Scored,
    TeacherRoutingJudge,
    family_of,
    programmatic_only,
    training_rubric,
)

__all__ = [
    "TRAINING_UNGRADED",
    "RubricScorer",
    "Sample",
    "Scored",
    "TeacherRoutingJudge",
    "family_of",
    "programmatic_only",
    "training_rubric",
]
