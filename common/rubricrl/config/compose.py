"""Hydra composition of experiment configs, validated into :class:`ExperimentConfig`.

Search path: the replication's ``replications/<paper>/configs/`` (primary config ``<paper>.yaml``)
then the shared tree shipped in the package, ``rubricrl/configs/train/``:

* ``algorithm/<name>.yaml``: algorithm base (``grpo``);
* ``scale/{tiny,single_gpu,paper}.yaml``: scale overlay;
* ``site/{local,slurm}.yaml``: site overlay;

and, in the replication folder, ``at_scale/<scale>.yaml``: the replication's own values at that scale
(optional). Precedence, lowest first: algorithm, the replication's ``<paper>.yaml``, scale, site,
``at_scale``, command-line overrides. Every file is ``# @package _global_``.

Overrides are Hydra's: ``scale=paper``, ``grpo.max_steps=4``, ``run.name=x``. Any schema field can be set
from the command line even when no YAML names it; a key that is not a schema field is an error naming it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rubricrl.config.schema import ExperimentConfig, register_section, registered_sections
from rubricrl.config_io import load_yaml_with_lines, strip_lines
from rubricrl.data.paths import _repo_root
from rubricrl.errors import Problems, UserError
from rubricrl.papers import find_paper

log = logging.getLogger(__name__)

TRAIN_CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "train"


def repo_root() -> Path:
    """The checkout holding ``replications/`` (the working directory if it has one, else the source tree)."""
    cwd = Path.cwd()
    if (cwd / "replications").is_dir():
        return cwd

    return _repo_root() or cwd


def resolve_path(p: str | Path) -> Path:
    """A config path: absolute as is; relative to the working directory if it exists there, else to the repo."""
    path = Path(p)
    if path.is_absolute() or path.exists():
        return path
    alt = repo_root() / path
    return alt if alt.exists() else path


def replication_config_dir(paper: str) -> Path:
    """``replications/<paper>/configs`` (raises UserError listing known papers)."""
    root = repo_root() / "replications"
    d = root / paper / "configs"
    if not (d / f"{paper}.yaml").is_file():
        known = sorted(p.parent.name for p in root.glob("*/configs") if (p / f"{p.parent.name}.yaml").is_file())
        raise UserError(
            f"no replication {paper!r}: expected {d / (paper + '.yaml')} (known: {', '.join(known) or 'none'})"
        )
    return d


def _import_section(paper: str) -> None:
    """Register the config sections of replication ``paper`` (discovering it registers them); unknown: none."""
    if not paper:
        return
    try:
        found = find_paper(paper)
    except UserError as e:  # the replications package is not installed: only the built-in sections validate
        log.warning("%s", e)
        return
    for name, model in found.sections.items() if found is not None else ():
        register_section(name, model)


def _hydra_message(e: Exception, overrides: Sequence[str]) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "Could not override" in msg:
        key = msg.split("'")[1] if "'" in msg else "?"
        return (
            f"unknown config key {key!r} in override; check the spelling "
            f"(`rubricrl replicate <paper> --show-config` prints every key)"
        )
    if "Could not find" in msg or "In '" in msg:
        return f"{msg} (scale: tiny | single_gpu | paper; site: see rubricrl/configs/train/site/)"
    return f"bad config override ({' '.join(overrides)}): {msg}"


def compose_dict(paper: str, overrides: Sequence[str] = (), config_dir: Path | None = None) -> dict[str, Any]:
    """Compose the config of ``paper`` with Hydra and return it as a plain dict (not validated)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    cdir = Path(config_dir) if config_dir else replication_config_dir(paper)
    search = f"hydra.searchpath=[file://{TRAIN_CONFIGS}]"
    for o in overrides:
        if "=" not in o:
            raise UserError(f"bad override {o!r}: expected key=value (e.g. grpo.max_steps=4, scale=paper)")
        if o.lstrip("+~").split("=", 1)[0].split(".", 1)[0] == "hydra":
            raise UserError(
                f"override {o!r}: hydra.* settings have no effect here (rubricrl composes configs "
                "with Hydra but does not use its app runner: no hydra.run.dir, sweeps or job logs). "
                "Choose where a run writes with run.root and run.name "
                "(hydra.run.dir=out/x -> run.root=out run.name=x)"
            )
    # Plain key=value becomes ++key=value (set, adding it if no YAML names it): every schema field can be
    # overridden, and the schema, not Hydra, rejects unknown keys. Config-group choices stay as they are.
    groups = {p.name for p in TRAIN_CONFIGS.iterdir() if p.is_dir()} | {p.name for p in cdir.iterdir() if p.is_dir()}
    hydra_overrides = [o if o.startswith(("+", "~")) or o.split("=", 1)[0] in groups else f"++{o}" for o in overrides]
    try:
        with initialize_config_dir(config_dir=str(cdir.resolve()), version_base=None):
            cfg = compose(config_name=paper, overrides=[search, *hydra_overrides])
            data = OmegaConf.to_container(cfg, resolve=True)
    except (HydraException, OmegaConfBaseException) as e:
        raise UserError(_hydra_message(e, overrides)) from None
    assert isinstance(data, dict)
    data.pop("hydra", None)
    return data


def validate_experiment(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a composed dict; every problem is reported as ``source: dotted.key: message``."""
    data = dict(data)
    _import_section(str(data.get("paper", "")))
    known = registered_sections()
    sections: dict[str, Any] = {}
    problems: list[str] = []
    for name in [k for k in data if k in known]:
        try:
            sections[name] = known[name].model_validate(data.pop(name))
        except ValidationError as e:
            problems += _pyd_problems(e, source, (name,))
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as e:
        problems += _pyd_problems(e, source, ())
        cfg = None
    if problems:
        raise Problems(problems)
    assert cfg is not None
    cfg.sections = sections
    return cfg


def _model_of(tp: Any) -> Any:
    """The pydantic model class inside an annotation (``Model``, ``Model | None``), else None."""

    if isinstance(tp, type) and hasattr(tp, "model_fields"):
        return tp
    for arg in typing.get_args(tp):
        m = _model_of(arg)
        if m is not None:
            return m
    return None


def _siblings(path: Sequence[str]) -> list[str]:
    """The field names a config mapping at dotted ``path`` may hold (its parent's schema), else []."""
    if not path:
        return sorted(set(ExperimentConfig.model_fields) | set(registered_sections()))
    model = registered_sections().get(path[0]) or _model_of(
        ExperimentConfig.model_fields.get(path[0]) and ExperimentConfig.model_fields[path[0]].annotation
    )
    for part in path[1:]:
        field = getattr(model, "model_fields", {}).get(part) if model is not None else None
        model = _model_of(field.annotation) if field is not None else None
    return sorted(model.model_fields) if model is not None else []


def unknown_key_message(where: Sequence[str]) -> str:
    """ "unknown key" with the nearest valid key(s) at the same place, e.g. ``did you mean grpo.max_steps?``."""

    near = difflib.get_close_matches(str(where[-1]), _siblings([str(p) for p in where[:-1]]), n=3, cutoff=0.6)
    parent = ".".join(str(p) for p in where[:-1])
    hint = (
        ("did you mean " + " or ".join(f"{parent + '.' if parent else ''}{k}" for k in near) + "?")
        if near
        else "check the spelling"
    )
    return f"unknown key ({hint} `rubricrl replicate <paper> --show-config` prints every key)"


def _pyd_problems(err: ValidationError, source: str, prefix: tuple) -> list[str]:
    out = []
    for e in err.errors():
        loc = prefix + tuple(e["loc"])
        where = ".".join(str(p) for p in loc)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = unknown_key_message(loc)
        out.append(f"{source}: {where}: {msg}")
    return out


def compose_experiment(paper: str, overrides: Sequence[str] = (), config_dir: Path | None = None) -> ExperimentConfig:
    """Compose with Hydra and validate: the one way to get a run's configuration.

    Args:
        paper: replication name (a folder ``replications/<paper>/``; :func:`rubricrl.papers.paper_names`).
        overrides: Hydra overrides, e.g. ``["scale=tiny", "grpo.max_steps=4", "run.name=x"]``.
        config_dir: replication config folder (default ``replications/<paper>/configs``).

    Raises:
        UserError: unknown paper, scale or key, bad value (``Problems`` lists each).
    """
    data = compose_dict(paper, overrides, config_dir)
    source = f"{paper} config" + (f" (overrides: {' '.join(overrides)})" if overrides else "")
    return validate_experiment(data, source)


def to_yaml(cfg: ExperimentConfig) -> str:
    """The fully resolved config as YAML (stable key order)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True, width=120)


def load_experiment_yaml(path: str | Path) -> ExperimentConfig:
    """Load a resolved config written by :func:`to_yaml` (e.g. ``runs/<run>/config.yaml``)."""

    tree = load_yaml_with_lines(path)
    if not isinstance(tree, dict):
        raise UserError("expected a mapping at the top level", path=str(path), line=1)
    return validate_experiment(strip_lines(tree), str(path))


def config_hash(cfg: ExperimentConfig, exclude: Sequence[str] = ("site", "wandb", "server", "monitor")) -> str:
    """sha256 of the result-relevant config (site, W&B, judge-server placement, the gold-judge drift monitor, run
    name / root / checkpoint keeping / reward-health thresholds / async reward excluded): changing only those neither
    reruns finished stages nor changes a recipe's hash. The monitor grades rollouts training already made and never
    changes a reward, so like ``run.max_ungraded_share`` it can only stop a stage, not change what it computes."""
    d = cfg.to_dict()
    for k in exclude:
        d.pop(k, None)
    d.get("run", {}).pop("name", None)
    d.get("run", {}).pop("root", None)
    for k in ("keep_checkpoints", "max_ungraded_share", "min_steps_with_reward_variance", "async_reward"):
        d.get("run", {}).pop(k, None)
    d.get("judge", {}).pop("base_url", None)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()
