"""Training: thin engine adapters and the stage runner the replications' pipelines (``replications/<paper>/``) use.

* :mod:`.stages`: ``Stage``, ``run_pipeline`` (``runs/<run>/<stage>/`` with config, hashes, metrics, DONE).
* :mod:`.rewards`: ``RubricScorer`` (judge + ``rubricrl.reward``; defense rubric as a veto), engine-independent.
* :mod:`.trl_adapter`: ``RubricRewardFunc`` (a TRL reward function), ``grpo_config``, ``train_grpo``.
* :mod:`.checkpoint`: SIGTERM/SIGINT -> checkpoint and clean exit; ``last_checkpoint`` for resume.
* :mod:`.wandb_log`: W&B offline by default.
* :mod:`.rollout`: batched sampling for filtering and evaluation.

Submodules import torch/TRL lazily; importing this package is cheap.
"""
