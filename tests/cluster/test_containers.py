"""Apptainer definitions: the shipped ones are well-formed; each broken variant is caught (Apptainer absent)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rubricrl.cluster.apptainer_def import check_def

REPO = Path(__file__).resolve().parents[2]
DEFS = sorted((REPO / "containers").glob("*.def"))


def test_three_images_are_defined():
    assert {p.stem for p in DEFS} >= {"train", "judge", "cpu"}


@pytest.mark.parametrize("path", DEFS, ids=lambda p: p.name)
def test_shipped_definition_is_well_formed(path):
    assert check_def(path) == []


def test_training_image_builds_on_the_pinned_nemo_rl_container():
    text = (REPO / "containers" / "train.def").read_text()
    assert "From: nvcr.io/nvidia/nemo-rl:v0.7.0" in text and "Bootstrap: docker" in text


@pytest.mark.parametrize(
    "edit,expect",
    [
        (
            lambda t: t.replace("From: nvcr.io/nvidia/nemo-rl:v0.7.0", "From: nvcr.io/nvidia/nemo-rl:latest"),
            "not pinned",
        ),
        (lambda t: t.replace("From: nvcr.io/nvidia/nemo-rl:v0.7.0\n", ""), "missing 'From:'"),
        (lambda t: t.replace("Bootstrap: docker", "Bootstrap: dokcer"), "unknown bootstrap"),
        (lambda t: t.replace('%runscript\n    exec rubricrl "$@"\n', ""), "missing section %runscript"),
        (lambda t: t + "\n%post\n    echo again\n", "appears twice"),
        (
            lambda t: t.replace("    org.opencontainers.image.source", "    x.source"),
            "lacks org.opencontainers.image.source",
        ),
        (
            lambda t: t.replace("%environment\n", "%environment\n    export WANDB_API_KEY=0123456789abcdef0123\n"),
            "credential",
        ),
        (
            lambda t: t.replace("%post\n", "%post\n    huggingface-cli login --token hf_" + "a" * 34 + "\n"),
            "Hugging Face token",
        ),
        (lambda t: t.replace("common /opt/rubricrl/common", "no_such_dir /opt/x"), "does not exist"),
        (lambda t: t.replace("%labels", "%lables"), "unknown section %lables"),
    ],
)
def test_broken_definitions_are_reported_with_line(tmp_path, edit, expect):
    (tmp_path / "containers").mkdir()
    for name in ("pyproject.toml", "README.md", "common", "rubric_banks", "replications", "slurm"):
        (tmp_path / name).symlink_to(REPO / name)
    bad = tmp_path / "containers" / "train.def"
    bad.write_text(edit((REPO / "containers" / "train.def").read_text()))
    problems = check_def(bad)
    assert any(expect in p and p.startswith(f"{bad}:") for p in problems), problems


def test_cli_check_containers(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", "cluster", "check-containers"], cwd=REPO, capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stdout.count(": ok") == len(DEFS), r.stdout + r.stderr
    bad = tmp_path / "x.def"
    bad.write_text("Bootstrap: docker\n%post\n    true\n")
    r = subprocess.run(
        [sys.executable, "-m", "rubricrl.cli", "cluster", "check-containers", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "missing 'From:'" in r.stderr and "Traceback" not in r.stderr
