"""Experiment configs: composition, overrides, errors, resolved-config drift, every YAML validates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rubricrl.config import compose_experiment, load_experiment_yaml
from rubricrl.errors import UserError

REPO = Path(__file__).resolve().parents[2]
SCALES = ["tiny", "single_gpu", "paper"]
SITES = sorted(p.stem for p in (REPO / "common/rubricrl/configs/train/site").glob("*.yaml"))
PAPERS = sorted(
    p.parent.name for p in (REPO / "replications").glob("*/configs") if (p / f"{p.parent.name}.yaml").is_file()
)


def _strip_comments(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))


@pytest.mark.parametrize("paper", PAPERS)
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("site", SITES)
def test_every_replication_scale_site_composes_and_validates(paper, scale, site):
    cfg = compose_experiment(paper, [f"scale={scale}", f"site={site}"])
    assert cfg.run.scale == scale and cfg.site.name == site and cfg.paper == paper


def test_every_resolved_and_shipped_yaml_validates():
    from rubricrl.generation import load_policy_config
    from rubricrl.judge import load_judge_config

    for p in sorted(REPO.glob("replications/*/configs/_resolved_*.yaml")):
        load_experiment_yaml(p)
    for p in sorted((REPO / "common/rubricrl/configs/judge").glob("*.yaml")):
        load_judge_config(p)
    for p in sorted((REPO / "common/rubricrl/configs/policy").glob("*.yaml")):
        load_policy_config(p)
    for p in sorted(REPO.glob("common/rubricrl/configs/train/*/*.yaml")):
        assert isinstance(yaml.safe_load(p.read_text()), dict), p


def test_paper_values_in_the_base():
    g = compose_experiment("rubicon", []).grpo
    assert (g.beta, g.epsilon, g.epsilon_high, g.loss_type, g.lr_scheduler_type) == (
        0.0,
        0.2,
        0.28,
        "dapo",
        "constant_with_warmup",
    )


def test_precedence_scale_then_replication_scale_then_command_line():
    tiny = compose_experiment("rubicon", [])
    assert tiny.policy.name == "smollm2-135m-instruct" and tiny.grpo.learning_rate == 2e-5  # at_scale/tiny wins
    paper = compose_experiment("rubicon", ["scale=paper"])
    assert paper.policy.name == "Qwen/Qwen3-30B-A3B" and paper.run.engine == "nemo_rl"
    o = compose_experiment(
        "rubicon", ["grpo.max_steps=4", "run.name=x", "rubicon.filter.k=3", "rubicon.eval.bootstrap=200"]
    )  # not named in any YAML: still settable
    assert (o.grpo.max_steps, o.run.name, o.section("rubicon").filter.k) == (4, "x", 3)
    assert o.section("rubicon").eval.bootstrap == 200


@pytest.mark.parametrize(
    "override,needle",
    [
        ("grpo.bogus=1", "grpo.bogus: unknown key"),
        ("scale=huge", "scale/huge"),
        ("grpo.learning_rate=abc", "grpo.learning_rate"),
        ("rubicon.filter.band=[0.9,0.1]", "band must be"),
        ("+grpo.typo=1", "grpo.typo: unknown key"),
        ("grpo.max_steps", "expected key=value"),
        ("grpo.num_generations=3", "multiple of num_generations"),
    ],
)
def test_bad_overrides_are_user_errors(override, needle):
    with pytest.raises(UserError) as e:
        compose_experiment("rubicon", [override])
    assert needle in str(e.value)


@pytest.mark.parametrize(
    "override,suggestion",
    [
        ("grpo.max_step=3", "did you mean grpo.max_steps"),
        ("run.nme=x", "did you mean run.name?"),
        ("rubicon.filtr.enabled=false", "did you mean rubicon.filter?"),
        ("rubicon.filter.bnd=[0.1,0.9]", "did you mean rubicon.filter.band?"),
    ],
)
def test_a_misspelt_key_gets_the_nearest_valid_one(override, suggestion):
    with pytest.raises(UserError) as e:
        compose_experiment("rubicon", [override])
    assert suggestion in str(e.value) and "rubricrl.config" not in str(e.value)  # a key, not a module


def test_hydra_settings_are_refused_not_silently_ignored():
    # hydra.run.dir=out/x used to run the pipeline into runs/rubicon-tiny.
    with pytest.raises(UserError, match=r"run.root=out run.name=x"):
        compose_experiment("rubicon", ["hydra.run.dir=out/x"])


def test_cli_hydra_cfg_job_prints_the_config_and_multirun_says_what_to_do():
    r = subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", "replicate", "rubicon", "--cfg", "job", "grpo.max_steps=7"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout)["grpo"]["max_steps"] == 7
    r = subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", "replicate", "rubicon", "-m", "grpo.max_steps=1,2"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "not supported" in r.stderr and "for v in 1 2; do rubricrl replicate rubicon grpo.max_steps=$v" in r.stderr


def test_typo_in_a_replication_yaml_is_reported(tmp_path):
    d = tmp_path / "configs"
    d.mkdir()
    text = (REPO / "replications/rubicon/configs/rubicon.yaml").read_text().replace("  filter:\n", "  filtr:\n", 1)
    (d / "rubicon.yaml").write_text(text)
    with pytest.raises(UserError) as e:
        compose_experiment("rubicon", [], config_dir=d)
    assert "rubicon.filtr: unknown key" in str(e.value)


def test_cli_bad_key_exits_2_without_traceback(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", "replicate", "rubicon", "grpo.bogus=1", f"run.root={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 2
    assert "grpo.bogus: unknown key" in r.stderr and "Traceback" not in r.stderr


def test_cli_show_config_accepts_overrides_after_options():
    r = subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", "replicate", "rubicon", "--show-config", "grpo.max_steps=7"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout)["grpo"]["max_steps"] == 7


def test_config_hash_ignores_placement_and_checkpoint_keeping_only():
    from rubricrl.config import config_hash

    base = config_hash(compose_experiment("rubicon", []))
    for same in (
        ["run.keep_checkpoints=true"],
        ["run.name=other", "run.root=/elsewhere"],
        ["wandb.mode=online"],
        ["run.max_ungraded_share=0.9", "run.min_steps_with_reward_variance=0"],
        ["run.async_reward=true"],
    ):
        assert config_hash(compose_experiment("rubicon", same)) == base, same
    assert config_hash(compose_experiment("rubicon", ["grpo.learning_rate=3e-6"])) != base
