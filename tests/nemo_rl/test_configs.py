"""Every generated NeMo RL config (replications/*/nemo_rl/*.yaml) against NeMo RL v0.7.0's own validation.

* NeMo RL's own tests, ``tests/unit/test_config_validation.py`` (its ``GRPOMasterConfig`` check and its
  TP-accuracy check), called on our files with ``defaults:`` repointed from the container path
  (``/opt/nemo-rl``) at the extracted copy;
* NeMo RL's loader with inheritance (``load_config``) and ``MasterConfig(**config)``, as ``run_grpo.py`` does;
* a strict walk of the keys our files set against NeMo RL's TypedDicts: pydantic ignores unknown
  TypedDict keys, so a misspelt key would otherwise be silently dropped;
* ``env.rubric`` through our own :class:`RubricEnvConfig` (unknown keys are errors there).
"""

from __future__ import annotations

import importlib.util
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import typing_extensions
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(REPO.glob("replications/*/nemo_rl/*.yaml"))
CONTAINER_ROOT = "/opt/nemo-rl"
TOP_LEVEL_OURS = {"rubricrl", "defaults"}  # our metadata section; the inheritance key


def test_every_generated_config_is_covered():
    assert len(CONFIGS) >= 5, CONFIGS


@pytest.fixture(scope="module")
def nemo_validation(nemo_rl_root):
    """NeMo RL's own tests/unit/test_config_validation.py, imported as a module."""
    path = nemo_rl_root / "tests" / "unit" / "test_config_validation.py"
    spec = importlib.util.spec_from_file_location("nemo_rl_test_config_validation", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _repointed(src: Path, nemo_rl_root: Path, tmp_path: Path) -> Path:
    text = src.read_text(encoding="utf-8")
    assert f"defaults: {CONTAINER_ROOT}/" in text, f"{src}: expected defaults under {CONTAINER_ROOT}"
    out = tmp_path / src.parent.parent.name / src.name  # no "/evals/" in the path (NeMo RL's type switch)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text.replace(f"defaults: {CONTAINER_ROOT}/", f"defaults: {nemo_rl_root}/"), encoding="utf-8")
    return out


@pytest.mark.parametrize("src", CONFIGS, ids=lambda p: p.name)
def test_nemo_rl_own_config_validation(src, nemo_rl_root, nemo_validation, tmp_path):
    path = _repointed(src, nemo_rl_root, tmp_path)
    nemo_validation.test_all_config_files_have_required_keys(str(path))
    nemo_validation.test_all_config_no_tp_size_accuracy_issues(str(path))


@pytest.mark.parametrize("src", CONFIGS, ids=lambda p: p.name)
def test_loader_with_inheritance_and_master_config(src, nemo_rl_root, tmp_path):
    from nemo_rl.algorithms.grpo import MasterConfig
    from nemo_rl.utils.config import load_config, register_omegaconf_resolvers
    from omegaconf import OmegaConf

    register_omegaconf_resolvers()
    cfg = OmegaConf.to_container(load_config(str(_repointed(src, nemo_rl_root, tmp_path))), resolve=True)
    master = MasterConfig(**cfg)
    ours = yaml.safe_load(src.read_text(encoding="utf-8"))
    # Our sections replace the math defaults wholesale (_override_), the rest inherits.
    assert master.env == {"rubric": {k: v for k, v in ours["env"]["rubric"].items()}}
    assert master.data["train"]["processor"] == "rubricrl_rubric" and master.data["train"]["env_name"] == "rubric"
    assert master.grpo["num_generations_per_prompt"] == ours["grpo"]["num_generations_per_prompt"]
    assert master.policy["model_name"] == ours["policy"]["model_name"]
    assert "math" not in master.env and "dataset_name" in master.data["train"]


def _hints(tp: Any) -> dict[str, Any] | None:
    """Field types of a TypedDict (or pydantic model) class, else None."""
    if isinstance(tp, type) and typing_extensions.is_typeddict(tp):
        return typing_extensions.get_type_hints(tp)
    fields = getattr(tp, "model_fields", None)
    if isinstance(fields, dict):
        return {k: f.annotation for k, f in fields.items()}
    return None


def _candidates(tp: Any) -> list[Any]:
    """The TypedDict / model types a value of type ``tp`` may be (through Optional, Union, NotRequired...)."""
    origin = typing.get_origin(tp)
    if origin is None:
        return [tp] if _hints(tp) is not None else []
    if origin in (typing.Union, types.UnionType) or str(origin).endswith(
        ("NotRequired", "Required", "Annotated", "ReadOnly")
    ):
        out = []
        for arg in typing.get_args(tp):
            out += _candidates(arg)
        return out
    return []


def _specialisations() -> dict[Any, list[Any]]:
    """NeMo RL types a config field with a base TypedDict whose backend subclasses add keys."""
    from nemo_rl.models.generation.interfaces import GenerationConfig
    from nemo_rl.models.generation.megatron.config import MCoreGenerationConfig
    from nemo_rl.models.generation.sglang.config import SGLangConfig
    from nemo_rl.models.generation.vllm.config import VllmConfig

    return {GenerationConfig: [GenerationConfig, VllmConfig, MCoreGenerationConfig, SGLangConfig]}


def _unknown(value: Any, tp: Any, where: str) -> list[str]:
    """Keys of ``value`` that no candidate type of ``tp`` declares, recursively."""
    if not isinstance(value, dict):
        return []
    special = _specialisations()
    cands = [s for c in _candidates(tp) for s in special.get(c, [c])]
    if not cands:
        return []  # dict[str, Any], Any, ...: no declared keys to check against
    best: tuple[int, int, list[str]] | None = None
    for cand in cands:  # the candidate that declares most of this level's keys, then fewest problems below
        hints = _hints(cand) or {}
        here = [f"{where}.{k}" for k in value if k not in hints and k != "_override_"]
        below = [p for k, v in value.items() if k in hints for p in _unknown(v, hints[k], f"{where}.{k}")]
        score = (len(here), len(below), here + below)
        if best is None or score[:2] < best[:2]:
            best = score
    return best[2] if best else []


@pytest.mark.parametrize("src", CONFIGS, ids=lambda p: p.name)
def test_no_key_nemo_rl_would_silently_ignore(src, nemo_rl_root):
    from nemo_rl.algorithms.grpo import MasterConfig

    ours = yaml.safe_load(src.read_text(encoding="utf-8"))
    hints = _hints(MasterConfig)
    problems = [k for k in ours if k not in hints and k not in TOP_LEVEL_OURS]
    for key, value in ours.items():
        if key in hints:
            problems += _unknown(value, hints[key], key)
    assert not problems, f"{src.name}: keys NeMo RL v0.7.0 does not declare (ignored silently): {problems}"


def test_the_walk_finds_a_misspelt_key(nemo_rl_root):
    from nemo_rl.algorithms.grpo import MasterConfig

    hints = _hints(MasterConfig)
    bad = {"grpo": {"num_prompts_per_stepp": 4}, "policy": {"generation": {"vllm_cfg": {"async_enginee": True}}}}
    found = [p for k, v in bad.items() for p in _unknown(v, hints[k], k)]
    assert "grpo.num_prompts_per_stepp" in found and "policy.generation.vllm_cfg.async_enginee" in found


@pytest.mark.parametrize("src", CONFIGS, ids=lambda p: p.name)
def test_rubric_env_section_is_valid_for_our_environment(src, nemo_rl_root):
    from rubricrl.train.nemo_rl_env import load_env_config

    ours = yaml.safe_load(src.read_text(encoding="utf-8"))
    env = load_env_config(ours["env"]["rubric"])
    assert env.group_size == ours["grpo"]["num_generations_per_prompt"]
    assert sys.modules.get("nemo_rl") is not None
