"""Job-script logic that needs no scheduler: syntax, the container-runtime switch, the make dispatcher."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "slurm").glob("*.sbatch")) + sorted((REPO / "slurm").glob("**/*.sh"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_bash_syntax(path):
    r = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _wrapped(runtime: str, tmp_path: Path, image: str) -> str:
    env_file = tmp_path / "site.env"
    env_file.write_text(
        f"export RR_RUNTIME={runtime}\nexport RR_APPTAINER=apptainer\nexport RR_BINDS=/a,/b\n"
        f"export RR_REPO={REPO}\nexport RR_VENV=/v\nexport RR_IMAGE_TRAINING={image}\n"
    )
    script = (
        f"source {REPO}/slurm/lib/common.sh; source {env_file}; "
        f"rr_cmd \"$(rr_image train)\" rubricrl replicate rubicon --stage s 'a=b c'; printf '%s\\n' \"${{RR_CMD[@]}}\""
    )
    r = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env={**os.environ, "PATH": "/usr/bin:/bin"}
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_runtime_none_runs_on_the_host_with_the_venv_first(tmp_path):
    out = _wrapped("none", tmp_path, "").splitlines()
    assert out[:2] == ["env", "PATH=/v/bin:/usr/bin:/bin"]
    assert out[2:] == ["rubricrl", "replicate", "rubicon", "--stage", "s", "a=b c"]


def test_runtime_apptainer_wraps_with_exec_binds_and_image(tmp_path):
    image = tmp_path / "train.sif"
    image.write_text("")
    out = _wrapped("apptainer", tmp_path, str(image)).splitlines()
    assert out[:2] == ["apptainer", "exec"]
    assert ["--bind", "/a,/b"] == out[out.index("--bind") : out.index("--bind") + 2]
    assert out[out.index(str(image)) + 1 :] == ["rubricrl", "replicate", "rubicon", "--stage", "s", "a=b c"]


def test_runtime_apptainer_with_missing_image_fails_clearly(tmp_path):
    env_file = tmp_path / "site.env"
    env_file.write_text(f"export RR_RUNTIME=apptainer\nexport RR_IMAGE_TRAINING={tmp_path}/nope.sif\n")
    r = subprocess.run(
        ["bash", "-c", f'source {REPO}/slurm/lib/common.sh; source {env_file}; rr_cmd "$RR_IMAGE_TRAINING" x'],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "nope.sif' not found" in r.stderr


def test_make_dispatcher_runs_locally_or_submits(tmp_path):
    fake = tmp_path / "rubricrl"
    fake.write_text('#!/bin/bash\necho "$@"\n')
    fake.chmod(0o755)
    env = {**os.environ, "RUBRICRL": str(fake)}
    r = subprocess.run(
        [str(REPO / "slurm" / "replicate.sh"), "rubicon", "scale=tiny"],
        capture_output=True,
        text=True,
        env={**env, "SLURM": "0"},
    )
    assert r.returncode == 0 and r.stdout.strip() == "replicate rubicon scale=tiny"
    site = tmp_path / "site.yaml"
    site.write_text("x: 1\n")
    r = subprocess.run(
        [str(REPO / "slurm" / "replicate.sh"), "rubicon", "scale=tiny"],
        capture_output=True,
        text=True,
        env={**env, "SLURM": "1", "SITE": str(site)},
    )
    assert r.returncode == 0 and r.stdout.strip() == f"cluster submit rubicon --site {site} scale=tiny"
    r = subprocess.run(
        [str(REPO / "slurm" / "replicate.sh"), "rubicon"],
        capture_output=True,
        text=True,
        env={**env, "SLURM": "1", "SITE": str(tmp_path / "missing.yaml")},
    )
    assert r.returncode == 2 and "site.example.yaml" in r.stderr
