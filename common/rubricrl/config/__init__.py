"""Experiment configuration: one typed schema, YAML files, Hydra composition and overrides.

Usage::

    from rubricrl.config import compose_experiment, to_yaml
    cfg = compose_experiment("rubicon", ["scale=tiny", "grpo.max_steps=4", "run.name=x"])
    cfg.grpo.learning_rate, cfg.section("rubicon").filter.band
    print(to_yaml(cfg))                       # the fully resolved config

Layout: shared bases under ``rubricrl/configs/train`` (``algorithm/``, ``scale/``, ``site/``), each
replication's differences under ``replications/<paper>/configs`` (``<paper>.yaml`` + ``at_scale/``);
see :mod:`rubricrl.config.compose` for precedence and :mod:`rubricrl.config.schema` for every key.
A replication adds its own top-level section with :func:`register_section` and names it in its ``PAPER``
(``replications/<paper>/__init__.py``), which :mod:`rubricrl.papers` discovers.
"""

from rubricrl.config.compose import (
    TRAIN_CONFIGS,
    compose_dict,
    compose_experiment,
    config_hash,
    load_experiment_yaml,
    replication_config_dir,
    repo_root,
    resolve_path,
    to_yaml,
    validate_experiment,
)
from rubricrl.config.schema import (
    ExperimentConfig,
    GRPOSettings,
    PolicyModel,
    RunConfig,
    ServerConfig,
    SiteConfig,
    WandbConfig,
    register_section,
    registered_sections,
)

__all__ = [
    "TRAIN_CONFIGS",
    "ExperimentConfig",
    "GRPOSettings",
    "PolicyModel",
    "RunConfig",
    "ServerConfig",
    "SiteConfig",
    "WandbConfig",
    "compose_dict",
    "compose_experiment",
    "config_hash",
    "load_experiment_yaml",
    "register_section",
    "registered_sections",
    "replication_config_dir",
    "repo_root",
    "resolve_path",
    "to_yaml",
    "validate_experiment",
]
