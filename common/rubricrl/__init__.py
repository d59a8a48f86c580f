"""rubricrl: rubric-anchored reinforcement learning for language models.

Subpackages:
    rubrics: schema, loading, validation and importers for rubrics.
    judge: the Judge protocol and its backends (HTTP, in-process model, programmatic, replay).
    reward: aggregation of per-criterion verdicts into a scalar reward.
    scoring: benchmark metrics computed from graded records (HealthBench).
    data: dataset loaders.
"""

__version__ = "0.1.0"
